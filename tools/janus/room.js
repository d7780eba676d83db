// joinbench's page for Janus: the same call as Sportello's room page, through Janus's VideoRoom
// with Janus's own client (janus.js): publish camera and microphone, subscribe to the other
// publisher in the room. window.sportelloPc is the subscriber's peer connection, so that the
// bench reads its decoded frames as it does on Sportello's page.
(function () {
  'use strict';
  // The room: ?room=1235 for the second of joinbench's two rooms.
  var ROOM = Number(new URLSearchParams(location.search).get('room')) || 1234;
  var janus;
  var publisher;
  var subscribed = {};

  function subscribe(list) {
    (list || []).forEach(function (p) {
      if (subscribed[p.id]) return;
      subscribed[p.id] = true;
      var sub;
      janus.attach({
        plugin: 'janus.plugin.videoroom',
        success: function (h) {
          sub = h;
          sub.send({ message: { request: 'join', room: ROOM, ptype: 'subscriber', streams: [{ feed: p.id }] } });
        },
        onmessage: function (msg, jsep) {
          if (!jsep) return;
          sub.createAnswer({
            jsep: jsep,
            tracks: [{ type: 'data' }],
            success: function (answer) {
              sub.send({ message: { request: 'start', room: ROOM }, jsep: answer });
              window.sportelloPc = sub.webrtcStuff.pc;
            },
            error: function (e) { console.error('answer', e); },
          });
        },
        onremotetrack: function (track, mid, on) {
          if (!on || track.kind !== 'video') return;
          var v = document.getElementById('remote');
          v.srcObject = new MediaStream([track]);
        },
      });
    });
  }

  Janus.init({
    debug: false,
    callback: function () {
      janus = new Janus({
        server: location.origin + '/janus',
        success: function () {
          janus.attach({
            plugin: 'janus.plugin.videoroom',
            success: function (h) {
              publisher = h;
              publisher.send({ message: { request: 'join', room: ROOM, ptype: 'publisher', display: 'bench' } });
            },
            onmessage: function (msg, jsep) {
              if (msg.videoroom === 'joined') {
                publisher.createOffer({
                  tracks: [{ type: 'audio', capture: true, recv: false }, { type: 'video', capture: true, recv: false }],
                  success: function (offer) {
                    publisher.send({ message: { request: 'configure', audio: true, video: true }, jsep: offer });
                  },
                  error: function (e) { console.error('offer', e); },
                });
              }
              if (msg.publishers) subscribe(msg.publishers);
              if (jsep) publisher.handleRemoteJsep({ jsep: jsep });
            },
          });
        },
        error: function (e) { console.error('janus', e); },
      });
    },
  });
})();
