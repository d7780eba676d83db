// The virtual room page: counts down to the opening with the server's time, enters by itself
// when the countdown reaches zero, then lets the person into the room and shows who is there.
// Plain JavaScript, no framework. The protocol is signaling/PROTOCOL.md.
(function () {
  'use strict';
  var root = document.getElementById('room');
  var token = root.dataset.token;
  var code = root.dataset.code;
  var role = root.dataset.role;
  var other = role === 'citizen' ? 'operator' : 'citizen';

  // The texts in the page's language (the server's catalogue; see web/src/script_texts.rs).
  var T = JSON.parse(document.getElementById('room-texts').textContent);
  function fill(text, name) { return text.replace('{nome}', name); }
  function hhmm(at) {
    return new Date(at).toLocaleTimeString(T.locale, { hour: '2-digit', minute: '2-digit', hourCycle: 'h23', timeZone: 'Europe/Rome' });
  }

  var sections = ['connecting', 'countdown', 'ready', 'in', 'closed'];
  function show(name) {
    sections.forEach(function (s) { document.getElementById('state-' + s).hidden = s !== name; });
    attachPreview();
  }

  // "1 giorno, 22 ore, 33 minuti e 30 secondi"
  function spell(ms) {
    var s = Math.max(0, Math.ceil(ms / 1000));
    var parts = [[Math.floor(s / 86400), T.units[0]], [Math.floor(s % 86400 / 3600), T.units[1]],
      [Math.floor(s % 3600 / 60), T.units[2]], [s % 60, T.units[3]]].map(function (p) { return [p[0], p[1].split('|')]; });
    while (parts.length > 1 && parts[0][0] === 0) parts.shift();
    var words = parts.map(function (p) { return p[0] + ' ' + p[1][p[0] === 1 ? 0 : 1]; });
    return words.length === 1 ? words[0] : words.slice(0, -1).join(', ') + T.and + words[words.length - 1];
  }

  var ws = null, final = false, joined = false, myName = null, peerName = null;
  // This socket carries our join (sent behind the hello by a page that came back, or after
  // `ready`); each new socket starts without.
  var joinSent = false;
  // Survives a reload: a participant who was in the call goes back in by itself.
  var rejoinKey = 'sportello-in-room-' + code + '-' + role;
  // With the name, the STUN/TURN servers of the last `ready`: a page that comes back prepares
  // its connection with them before its socket is open.
  var serversKey = 'sportello-ice-' + code + '-' + role;
  function remember(name) {
    try {
      if (name) {
        sessionStorage.setItem(rejoinKey, name);
        sessionStorage.setItem(serversKey, JSON.stringify(iceServers));
      } else {
        sessionStorage.removeItem(rejoinKey);
        sessionStorage.removeItem(serversKey);
      }
    } catch (e) { /* private mode */ }
  }
  // Whether kept TURN credentials (username "EXPIRY:…", EXPIRY in Unix seconds) still have a
  // minute to run: only then does a page that came back call with them before `ready`.
  function serversLast(servers) {
    var now = Date.now() / 1000;
    return servers.every(function (s) {
      var expiry = s && typeof s.username === 'string' ? Number(s.username.split(':')[0]) : NaN;
      return !(s && s.username) || (isFinite(expiry) && expiry > now + 60);
    });
  }
  function remembered() { try { return sessionStorage.getItem(rejoinKey); } catch (e) { return null; } }
  function keptServers() { try { return JSON.parse(sessionStorage.getItem(serversKey)) || []; } catch (e) { return []; } }
  var deadline = 0, timer = null, retry = 0;

  function send(m) { m.v = 1; if (ws && ws.readyState === 1) ws.send(JSON.stringify(m)); }
  // The steps of joining, as performance marks ("sportello:ready", …): for anyone (or any
  // benchmark) who wants to see where the time goes.
  function mark(step) { try { performance.mark('sportello:' + step); } catch (e) { /* old browser */ } }
  mark('script');

  function tick() {
    clearTimeout(timer);
    var left = deadline - performance.now();
    document.getElementById('countdown').textContent = spell(left);
    if (left <= 0) { send({ type: 'hello', token: token }); return; }
    timer = setTimeout(tick, (left % 1000) || 1000);
  }

  // Every status shown, for anyone (or any test) who wants the story of the call.
  window.sportelloStatusLog = [];
  function status(text) {
    document.getElementById('room-status').textContent = text;
    window.sportelloStatusLog.push(text);
  }

  function close(message) {
    final = true;
    document.getElementById('closed-message').textContent = message;
    show('closed');
  }


  // ---------------------------------------------------------------- media
  // STUN/TURN servers come with each `ready`: TURN credentials are made for this socket and
  // expire, so a reconnected socket brings fresh ones.
  var iceServers = [];
  var params = new URLSearchParams(location.search);
  var policy = params.get('ice') === 'relay' ? 'relay' : 'all';
  // ?video=h264 makes this browser prefer H.264 (as iOS Safari does) while still accepting VP8,
  // for diagnosis and tests; otherwise the browser's own order (VP8 first in Chromium).
  var preferH264 = params.get('video') === 'h264';
  var local = null, pc = null, screen = null;
  // The status the relay's "failed" replaced, to put back once the call connects.
  var blockedOver = null;

  function warn(text) {
    var w = document.getElementById('media-warning');
    w.textContent = text;
    w.hidden = !text;
  }

  // The camera plays in the preview only while the preview is on screen: a video element with a
  // camera in it takes every frame, seen or not, and in a call the page needs that time. The
  // lists of cameras and microphones beside it are filled then too: a page going back into the
  // call by itself never shows them, and asks the browser for no device list while it joins.
  function attachPreview() {
    var preview = document.getElementById('preview');
    var wanted = document.getElementById('state-ready').hidden ? null : local;
    if (preview.srcObject === wanted) return;
    preview.srcObject = wanted;
    if (wanted) fillDevices();
  }

  function stopLocal() {
    if (local) local.getTracks().forEach(function (t) { t.stop(); });
    local = null;
    mediaReady = null;
  }

  async function getMedia(cameraId, micId) {
    var video = cameraId ? { deviceId: { exact: cameraId } } : { width: { ideal: 1280 }, height: { ideal: 720 } };
    var audio = micId ? { deviceId: { exact: micId } } : true;
    try {
      return await navigator.mediaDevices.getUserMedia({ audio: audio, video: video });
    } catch (e) {
      try {
        var a = await navigator.mediaDevices.getUserMedia({ audio: audio });
        warn(T.noCamera);
        return a;
      } catch (e2) {
        warn(T.noMedia);
        return new MediaStream();
      }
    }
  }

  async function fillDevices() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return;
    var devices = await navigator.mediaDevices.enumerateDevices();
    var cams = devices.filter(function (d) { return d.kind === 'videoinput'; });
    var mics = devices.filter(function (d) { return d.kind === 'audioinput'; });
    [['camera-select', cams, 'video'], ['mic-select', mics, 'audio']].forEach(function (x) {
      var sel = document.getElementById(x[0]);
      sel.textContent = '';
      var current = local && local.getTracks().find(function (t) { return t.kind === x[2]; });
      var currentId = current && current.getSettings ? current.getSettings().deviceId : null;
      x[1].forEach(function (d, i) {
        var o = document.createElement('option');
        o.value = d.deviceId;
        o.textContent = d.label || (x[2] === 'video' ? 'Camera ' : 'Mic ') + (i + 1);
        if (d.deviceId === currentId) o.selected = true;
        sel.appendChild(o);
      });
    });
    var row = document.getElementById('devices');
    row.hidden = cams.length + mics.length === 0;
    row.classList.remove('devices-pending');
  }

  // The camera and microphone, asked for once; the call waits for them (a quick "Collegati"
  // must not start a call with no tracks).
  var mediaReady = null;
  function startPreview() {
    if (!mediaReady) {
      warn('');
      mediaReady = getMedia().then(function (s) { local = s; mark('media'); return s; });
    }
    return mediaReady.then(function () {
      attachPreview();
      return local;
    });
  }

  async function changeDevice() {
    var cam = document.getElementById('camera-select').value;
    var mic = document.getElementById('mic-select').value;
    var fresh = await getMedia(cam, mic);
    var old = local;
    local = fresh;
    attachPreview();
    document.getElementById('local').srcObject = local;
    if (pc) {
      pc.getSenders().forEach(function (s) {
        if (!s.track && !s.__kind) return;
        var kind = s.track ? s.track.kind : s.__kind;
        var t = local.getTracks().find(function (x) { return x.kind === kind; });
        if (t) s.replaceTrack(t);
      });
    }
    if (old) old.getTracks().forEach(function (t) { t.stop(); });
  }

  function setState(state) {
    document.getElementById('connection-state').textContent = T.states[state] || state;
    root.dataset.connection = state;
  }

  // The connection to the relay, made and offered at once (ICE gathering starts) and sent to the
  // relay when the room has the join (`startCall`). A page that comes back into an open room
  // makes it before its socket is open. `__calling`: `startCall` has taken it.
  function newConnection() {
    if (pc) { pc.close(); }
    var mine = new RTCPeerConnection({ iceServers: iceServers, iceTransportPolicy: policy });
    pc = mine;
    window.sportelloPc = pc;
    mine.__servers = JSON.stringify(iceServers);
    mine.__offered = false;
    // The camera and microphone join it as soon as they are ready (replaceTrack, no new offer).
    mine.__senders = {};
    ['audio', 'video'].forEach(function (kind) {
      var tr = mine.addTransceiver(kind, { direction: 'sendrecv' });
      tr.sender.__kind = kind;
      mine.__senders[kind] = tr.sender;
      if (kind === 'video' && preferH264 && tr.setCodecPreferences && window.RTCRtpReceiver && RTCRtpReceiver.getCapabilities) {
        var caps = RTCRtpReceiver.getCapabilities('video').codecs;
        var h264 = caps.filter(function (c) { return c.mimeType.toLowerCase() === 'video/h264'; });
        var others = caps.filter(function (c) { return c.mimeType.toLowerCase() !== 'video/h264'; });
        // H.264 first, the others still accepted (the other side may send VP8).
        if (h264.length) { tr.setCodecPreferences(h264.concat(others)); }
      }
    });
    mine.__remote = new MediaStream();
    mine.ontrack = function (e) { mine.__remote.addTrack(e.track); };
    mine.onicecandidate = function (e) {
      // Those found before the offer leaves are in it.
      if (e.candidate && mine.__offered && pc === mine) {
        send({ type: 'ice', candidate: e.candidate.candidate, sdp_mid: e.candidate.sdpMid, sdp_mline_index: e.candidate.sdpMLineIndex });
      }
    };
    mine.onconnectionstatechange = function () {
      if (pc !== mine) return;
      setState(mine.connectionState);
      mark(mine.connectionState);
      // Connected after the relay gave up on an earlier try: what the status said before.
      if (mine.connectionState === 'connected' && blockedOver !== null) {
        if (document.getElementById('room-status').textContent === T.blocked[role]) status(blockedOver);
        blockedOver = null;
      }
      if (mine.connectionState === 'failed' && joined) { startCall(); }
    };
    mine.__offer = mine.createOffer().then(function (o) { return mine.setLocalDescription(o); });
    return mine;
  }

  // Joins the call: the prepared connection if there is one (made with the same STUN/TURN
  // servers), else a new one; its offer goes to the relay behind the join.
  async function startCall() {
    var mine = pc && !pc.__calling && pc.__servers === JSON.stringify(iceServers) ? pc : newConnection();
    mine.__calling = true;
    document.getElementById('remote').srcObject = mine.__remote;
    setState('connecting');
    await mine.__offer;
    if (pc !== mine) return;
    send({ type: 'offer', sdp: mine.localDescription.sdp });
    mine.__offered = true;
    mark('offer');
    await startPreview();
    if (pc !== mine) return; // replaced while waiting for the camera
    var stream = local || new MediaStream();
    document.getElementById('local').srcObject = stream;
    ['audio', 'video'].forEach(function (kind) {
      var t = stream.getTracks().find(function (x) { return x.kind === kind; });
      if (t) mine.__senders[kind].replaceTrack(t);
    });
  }

  // ---------------------------------------------------------------- chat
  // The call's messages come from the server (ours too, once it has them), numbered: entering
  // again (a reload, a reconnection) brings them all back, so the list starts over at each join.
  var chatLog = document.getElementById('chat-log');
  var chatSeq = 0, chatSent = '';
  function chatError(text) {
    var e = document.getElementById('chat-error');
    e.textContent = text;
    e.hidden = !text;
  }
  // Text with the web addresses in it as links: only in the operator's messages (an office
  // sends a form's address; a citizen's text is shown as typed).
  function linkify(el, text) {
    var re = /https?:\/\/[^\s<>"]+/g, last = 0, x;
    while ((x = re.exec(text))) {
      var url = x[0].replace(/[.,;:!?)\]]+$/, '');
      el.appendChild(document.createTextNode(text.slice(last, x.index)));
      var a = document.createElement('a');
      a.href = url;
      a.textContent = url;
      a.target = '_blank';
      a.rel = 'noopener noreferrer';
      el.appendChild(a);
      last = x.index + url.length;
      re.lastIndex = last;
    }
    el.appendChild(document.createTextNode(text.slice(last)));
  }
  function chatLine(m) {
    if (m.seq <= chatSeq) return;
    chatSeq = m.seq;
    var mine = m.from === role;
    var li = document.createElement('li');
    li.className = 'chat-line ' + (mine ? 'chat-mine' : 'chat-theirs');
    var who = document.createElement('span');
    who.className = 'chat-who';
    var time = hhmm(m.at);
    who.textContent = (mine ? T.you : m.name) + ' (' + time + '): ';
    li.appendChild(who);
    var body = document.createElement('span');
    body.className = 'chat-text';
    if (m.from === 'operator') linkify(body, m.text); else body.textContent = m.text;
    li.appendChild(body);
    chatLog.appendChild(li);
    chatLog.scrollTop = chatLog.scrollHeight;
  }
  document.getElementById('chat-form').addEventListener('submit', function (e) {
    e.preventDefault();
    var input = document.getElementById('chat-text');
    var text = input.value.trim();
    if (!text) return;
    if (!ws || ws.readyState !== 1) { chatError(T.offline); return; }
    chatError('');
    chatSent = text;
    send({ type: 'chat', text: text });
    input.value = '';
  });

  // Enters the room, and sets up the call at once rather than after the server's answer: the
  // server reads the socket in order, so the offer behind the join finds it done.
  function join() {
    joinSent = true;
    mark('join');
    chatSeq = 0;
    chatLog.textContent = '';
    send({ type: 'join', name: myName });
    if (!pc || !pc.__calling) startCall();
  }

  function endCall() {
    if (pc) { pc.close(); pc = null; }
    if (screen) { screen.getTracks().forEach(function (t) { t.stop(); }); screen = null; }
  }

  function toggle(kind, button, offText, onText) {
    if (!local) return;
    var tracks = local.getTracks().filter(function (t) { return t.kind === kind; });
    if (!tracks.length) return;
    var enabled = !tracks[0].enabled;
    tracks.forEach(function (t) { t.enabled = enabled; });
    button.setAttribute('aria-pressed', String(!enabled));
    button.textContent = enabled ? offText : onText;
  }

  async function shareScreen(button) {
    var sender = pc && pc.getSenders().find(function (s) { return (s.track && s.track.kind === 'video') || s.__kind === 'video'; });
    if (!sender) return;
    if (screen) {
      screen.getTracks().forEach(function (t) { t.stop(); });
      screen = null;
      var cam = local && local.getVideoTracks()[0];
      sender.replaceTrack(cam || null);
      button.textContent = T.share;
      return;
    }
    try {
      screen = await navigator.mediaDevices.getDisplayMedia({ video: true });
    } catch (e) { return; }
    var t = screen.getVideoTracks()[0];
    sender.replaceTrack(t);
    button.textContent = T.stopShare;
    t.onended = function () { if (screen) shareScreen(button); };
  }

  function onMessage(m) {
    switch (m.type) {
      case 'countdown':
        // Not open (yet, or again: the appointment moved): a call prepared (or sent behind the
        // hello) by a page that came back waits for the opening, and so does its camera.
        if (pc && (!pc.__calling || !joined)) { endCall(); stopLocal(); }
        joinSent = false;
        // Counted from the server's time left, not the device's clock.
        deadline = performance.now() + m.ms_left;
        document.getElementById('opens-at').textContent = hhmm(m.opens_at);
        show('countdown');
        tick();
        break;
      case 'ready':
        mark('ready');
        retry = 0;
        if (Array.isArray(m.ice_servers)) {
          iceServers = m.ice_servers;
          // The fresh servers replace the kept ones, for the next time the page comes back.
          if (remembered()) remember(remembered());
        }
        // The join went behind the hello (a page that came back): the call is on its way, and the
        // page stays on "connecting" until the room says who is there.
        if (joinSent) { show('connecting'); break; }
        if (joined && myName) { join(); break; }
        if (remembered()) {
          myName = remembered();
          // Back in at once: the camera starts meanwhile, and the call waits for it.
          show('connecting');
          startPreview();
          join();
          break;
        }
        show('ready');
        startPreview();
        break;
      case 'waiting':
        mark('in-room');
        if (!pc || !pc.__calling) startCall();
        joined = true;
        show('in');
        status(T.waiting[m.waiting_for]);
        break;
      case 'peer_joined':
        mark('in-room');
        if (!pc || !pc.__calling) startCall();
        joined = true;
        peerName = m.name;
        document.getElementById('peer-name').textContent = m.name;
        show('in');
        status(fill(T.joined, m.name));
        document.dispatchEvent(new CustomEvent('sportello:peer-joined', { detail: m }));
        break;
      case 'peer_left':
        if (m.role === other) {
          status(m.reason === 'connection_lost' ? fill(T.lost, peerName || T.someone_else) : fill(T.left, peerName || T.someone));
          document.dispatchEvent(new CustomEvent('sportello:peer-left', { detail: m }));
        } else if (role === 'operator') {
          document.getElementById('operator-notice').hidden = true;
        }
        break;
      case 'citizen_waiting':
        var n = document.getElementById('operator-notice');
        n.textContent = fill(T.citizenWaiting, m.name);
        n.hidden = false;
        break;
      case 'chat':
        chatLine(m);
        break;
      case 'replaced':
        remember(null);
        endCall();
        close(T.replaced);
        break;
      case 'media_state':
        // The relay gave up on this connection (not connected in time, or its ICE lost): a new
        // one at once, not when the browser gives up too (about 30 s later, or never).
        if (m.state === 'failed' && joined && pc && pc.__offered) {
          mark('relay-failed');
          // Said where the call is, in place of the status until the call connects.
          var now = document.getElementById('room-status').textContent;
          if (now !== T.blocked[role]) blockedOver = now;
          status(T.blocked[role]);
          startCall();
        }
        break;
      case 'peer_media':
        // The other side's connection to the relay failed (it is trying again), or is up again.
        var peerSaid = fill(T.peerBlocked, peerName || T.someone);
        if (m.state === 'failed') {
          status(peerSaid);
        } else if (m.state === 'connected' && document.getElementById('room-status').textContent === peerSaid) {
          status(fill(T.joined, peerName || T.someone));
        }
        break;
      case 'answer':
        mark('answer');
        if (pc && m.from === 'relay') pc.setRemoteDescription({ type: 'answer', sdp: m.sdp });
        break;
      case 'ice':
        if (pc && m.from === 'relay') {
          pc.addIceCandidate({ candidate: m.candidate, sdpMid: m.sdp_mid, sdpMLineIndex: m.sdp_mline_index }).catch(function () {});
        }
        break;
      case 'error':
        // The join was refused (the offer sent behind it is refused too): a new call next time.
        if (m.code === 'not_ready' && !joined) endCall();
        if (m.code === 'bad_chat' || m.code === 'chat_full') {
          // What was typed comes back, with the reason.
          document.getElementById('chat-text').value = chatSent;
          chatError(T.errors[m.code]);
        }
        if (m.code === 'bad_name') {
          remember(null);
          // A page that went back in by itself with its kept name: the form, to type another.
          show('ready');
          startPreview();
          document.getElementById('join-form').hidden = false;
          nameError(T.errors[m.code]);
        }
        if (['bad_token', 'wrong_room', 'ended', 'cancelled', 'not_confirmed'].indexOf(m.code) >= 0) {
          remember(null);
          // A page that came back prepared its call and started its camera: both stop.
          endCall();
          stopLocal();
          close(T.errors[m.code]);
        }
        break;
    }
  }

  // The page came with the countdown (the room is not open yet): it runs at once, and the
  // socket's answer corrects it with the server's time.
  if (root.dataset.msLeft) {
    deadline = performance.now() + Number(root.dataset.msLeft);
    tick();
  }

  function connect() {
    mark('socket-asked');
    var scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
    ws = new WebSocket(scheme + location.host + '/ws/stanza/' + encodeURIComponent(code));
    ws.onopen = function () {
      mark('socket');
      joinSent = false;
      send({ type: 'hello', token: token });
      // A page that came back into an open room sends its join and offer behind the hello,
      // without waiting a round trip for `ready`: the server reads the socket in order, and
      // refuses both (not_ready) if the room turned out not to be open.
      if (comingBack && pc && !pc.__calling && serversLast(keptServers())) {
        myName = remembered();
        join();
      }
      comingBack = false;
    };
    ws.onmessage = function (e) {
      try { onMessage(JSON.parse(e.data)); } catch (err) { /* ignore what we cannot read */ }
    };
    ws.onclose = function (e) {
      if (final || e.code === 4409 || e.code === 4410 || e.code === 4401 || e.code === 4403) { return; }
      if (joined) { status(T.reconnecting); endCall(); }
      retry = Math.min(retry + 1, 5);
      setTimeout(connect, 500 * retry);
    };
  }

  document.getElementById('enter').addEventListener('click', function () {
    var f = document.getElementById('join-form');
    f.hidden = false;
    document.getElementById('name').focus();
  });
  // The server's word on the name typed (empty: none), next to the field.
  function nameError(text) {
    var input = document.getElementById('name');
    var error = document.getElementById('name-error');
    error.textContent = text;
    error.hidden = !text;
    if (text) { input.setAttribute('aria-invalid', 'true'); input.focus(); } else { input.removeAttribute('aria-invalid'); }
  }

  document.getElementById('join-form').addEventListener('submit', function (e) {
    e.preventDefault();
    nameError('');
    myName = document.getElementById('name').value.trim();
    if (myName) { remember(myName); join(); }
  });
  document.getElementById('leave').addEventListener('click', function () {
    joined = false;
    remember(null);
    send({ type: 'leave' });
    endCall();
    setState('closed');
    show('ready');
    warn(T.hungUp);
  });
  document.getElementById('toggle-mic').addEventListener('click', function (e) { toggle('audio', e.currentTarget, T.mute, T.unmute); });
  document.getElementById('toggle-camera').addEventListener('click', function (e) { toggle('video', e.currentTarget, T.cameraOff, T.cameraOn); });
  document.getElementById('camera-select').addEventListener('change', changeDevice);
  document.getElementById('mic-select').addEventListener('change', changeDevice);
  var share = document.getElementById('share-screen');
  if (share && navigator.mediaDevices && navigator.mediaDevices.getDisplayMedia) {
    share.hidden = false;
    share.addEventListener('click', function (e) { shareScreen(e.currentTarget); });
  }
  window.addEventListener('pagehide', function () { endCall(); stopLocal(); });
  window.sportelloRoom = { send: send };
  // Back into an open room (a reload): the camera and the connection start while the socket
  // opens, with the STUN/TURN servers of the last visit (`startCall` makes another if the
  // socket's differ).
  var comingBack = false;
  if (!root.dataset.msLeft && remembered() && window.RTCPeerConnection) {
    iceServers = keptServers();
    startPreview();
    newConnection();
    comingBack = true;
  }
  connect();
})();
