// The camera and microphone test (/prova-video): tells a browser that cannot make video calls
// (an app's built-in browser, an old Safari, a page not on https) what to do instead; otherwise
// shows the camera and a live microphone level, and says in words what works. Nothing leaves
// the device. Plain JavaScript, no framework.
(function () {
  'use strict';
  var root = document.getElementById('check');
  // The texts in the page's language (the server's catalogue; see web/src/script_texts.rs).
  var T = JSON.parse(document.getElementById('check-texts').textContent);

  // Why this browser cannot make the call, or null.
  function unsupported() {
    var ua = navigator.userAgent || '';
    if (/FBAN|FBAV|Instagram|Line\/|MicroMessenger|Snapchat|TikTok|; wv\)/.test(ua)) return T.inApp;
    if (!window.isSecureContext) return T.insecure;
    if (!window.RTCPeerConnection || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return T.old;
    return null;
  }
  var why = unsupported();
  root.dataset.supported = String(!why);
  if (why) {
    var u = document.getElementById('check-unsupported');
    u.textContent = why;
    u.hidden = false;
    document.getElementById('check-intro').hidden = true;
    return;
  }

  var stream = null, audio = null, frame = 0, heard = false;
  var results = document.getElementById('check-results');
  function say(id, text) {
    var li = document.getElementById(id);
    if (!li) { li = document.createElement('li'); li.id = id; results.appendChild(li); }
    li.textContent = text;
  }
  function stop() {
    if (stream) stream.getTracks().forEach(function (t) { t.stop(); });
    stream = null;
    cancelAnimationFrame(frame);
    if (audio) { audio.close(); audio = null; }
  }

  function meter(track) {
    var Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return;
    audio = new Ctx();
    var analyser = audio.createAnalyser();
    analyser.fftSize = 512;
    audio.createMediaStreamSource(new MediaStream([track])).connect(analyser);
    var data = new Uint8Array(analyser.fftSize);
    var level = document.getElementById('check-level');
    (function draw() {
      analyser.getByteTimeDomainData(data);
      var peak = 0;
      for (var i = 0; i < data.length; i++) peak = Math.max(peak, Math.abs(data[i] - 128));
      var value = Math.min(100, Math.round(peak / 128 * 100 * 1.5));
      level.value = value;
      level.setAttribute('aria-valuetext', value + '%');
      if (value > 5 && !heard) { heard = true; say('check-heard', T.heard); }
      frame = requestAnimationFrame(draw);
    })();
  }

  async function fillDevices() {
    var devices = await navigator.mediaDevices.enumerateDevices();
    [['check-camera', 'videoinput'], ['check-mic', 'audioinput']].forEach(function (x) {
      var sel = document.getElementById(x[0]);
      var current = stream && stream.getTracks().find(function (t) { return (t.kind === 'video') === (x[1] === 'videoinput'); });
      var currentId = current && current.getSettings ? current.getSettings().deviceId : null;
      sel.textContent = '';
      devices.filter(function (d) { return d.kind === x[1]; }).forEach(function (d, i) {
        var o = document.createElement('option');
        o.value = d.deviceId;
        o.textContent = d.label || (x[1] === 'videoinput' ? 'Camera ' : 'Mic ') + (i + 1);
        o.selected = d.deviceId === currentId;
        sel.appendChild(o);
      });
    });
    // The lists held their place, unseen, until now (see the page): shown, they move nothing.
    var row = document.getElementById('check-devices');
    row.hidden = !devices.some(function (d) { return d.kind === 'videoinput' || d.kind === 'audioinput'; });
    row.classList.remove('devices-pending');
  }

  async function start(cameraId, micId) {
    stop();
    heard = false;
    results.textContent = '';
    var video = cameraId ? { deviceId: { exact: cameraId } } : { width: { ideal: 1280 }, height: { ideal: 720 } };
    var mic = micId ? { deviceId: { exact: micId } } : true;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: mic, video: video });
    } catch (e) {
      try { stream = await navigator.mediaDevices.getUserMedia({ audio: mic }); } catch (e2) { stream = null; }
    }
    document.getElementById('check-live').hidden = false;
    // No camera or microphone: no lists to choose from. Allowed (again): their place is kept.
    var row = document.getElementById('check-devices');
    if (!stream) { row.hidden = true; say('check-camera-result', T.denied); root.dataset.result = 'denied'; return; }
    if (row.hidden) { row.classList.add('devices-pending'); row.hidden = false; }
    var v = stream.getVideoTracks()[0];
    var a = stream.getAudioTracks()[0];
    var el = document.getElementById('check-video');
    el.srcObject = stream;
    if (v) {
      var s = v.getSettings ? v.getSettings() : {};
      say('check-camera-result', T.cameraOk.replace('{w}', s.width || '?').replace('{h}', s.height || '?'));
    } else {
      say('check-camera-result', T.cameraNo);
    }
    say('check-mic-result', a ? T.micOk : T.micNo);
    if (a) meter(a);
    root.dataset.result = (v ? 'camera ' : '') + (a ? 'microphone' : '');
    fillDevices();
  }

  function chosen() { start(document.getElementById('check-camera').value, document.getElementById('check-mic').value); }
  document.getElementById('check-start').addEventListener('click', function () { start(); });
  document.getElementById('check-camera').addEventListener('change', chosen);
  document.getElementById('check-mic').addEventListener('change', chosen);
  document.getElementById('check-stop').addEventListener('click', function () {
    stop();
    results.textContent = '';
    say('check-ended', T.ended);
    document.getElementById('check-level').value = 0;
  });
  window.addEventListener('pagehide', stop);
})();
