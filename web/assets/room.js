// The virtual room page: counts down to the opening with the server's time, enters by itself
// when the countdown reaches zero, then lets the person into the room and shows who is there.
// Plain JavaScript, no framework. The protocol is signaling/PROTOCOL.md.
(function () {
  'use strict';
  var root = document.getElementById('room');
  var token = root.dataset.token;
  var code = root.dataset.code;
  var en = root.dataset.lang === 'en';
  var role = root.dataset.role;
  var other = role === 'citizen' ? 'operator' : 'citizen';

  var T = en ? {
    day: ['day', 'days'], hour: ['hour', 'hours'], minute: ['minute', 'minutes'], second: ['second', 'seconds'], and: ' and ',
    waiting: { operator: 'You are in the room. Waiting for the operator…', citizen: 'You are in the room. Waiting for the citizen…' },
    joined: function (n) { return n + ' has joined: the call is starting.'; },
    left: function (n) { return (n || 'The other person') + ' has left the room.'; },
    lost: function (n) { return 'Connection with ' + (n || 'the other person') + ' lost, reconnecting…'; },
    citizenWaiting: function (n) { return n + ' is waiting in the room.'; },
    replaced: 'You opened this room in another tab or window: continue there.',
    reconnecting: 'Connection lost, reconnecting…',
    ended: 'This appointment has ended.'
  } : {
    day: ['giorno', 'giorni'], hour: ['ora', 'ore'], minute: ['minuto', 'minuti'], second: ['secondo', 'secondi'], and: ' e ',
    waiting: { operator: "Sei nella stanza. In attesa dell'operatore…", citizen: 'Sei nella stanza. In attesa del cittadino…' },
    joined: function (n) { return n + ' è entrato nella stanza: la videochiamata sta per iniziare.'; },
    left: function (n) { return (n || "L'altra persona") + ' è uscita dalla stanza.'; },
    lost: function (n) { return 'Connessione con ' + (n || "l'altra persona") + ' persa, riconnessione in corso…'; },
    citizenWaiting: function (n) { return n + ' è in attesa nella stanza.'; },
    replaced: 'Hai aperto la stanza in un\'altra scheda o finestra: continua da lì.',
    reconnecting: 'Connessione persa, nuovo tentativo in corso…',
    ended: "L'appuntamento è terminato."
  };

  var sections = ['connecting', 'countdown', 'ready', 'in', 'closed'];
  function show(name) {
    sections.forEach(function (s) { document.getElementById('state-' + s).hidden = s !== name; });
  }

  // "1 giorno, 22 ore, 33 minuti e 30 secondi"
  function spell(ms) {
    var s = Math.max(0, Math.ceil(ms / 1000));
    var parts = [[Math.floor(s / 86400), T.day], [Math.floor(s % 86400 / 3600), T.hour],
      [Math.floor(s % 3600 / 60), T.minute], [s % 60, T.second]];
    while (parts.length > 1 && parts[0][0] === 0) parts.shift();
    var words = parts.map(function (p) { return p[0] + ' ' + p[1][p[0] === 1 ? 0 : 1]; });
    return words.length === 1 ? words[0] : words.slice(0, -1).join(', ') + T.and + words[words.length - 1];
  }

  var ws = null, final = false, joined = false, myName = null, peerName = null;
  var deadline = 0, timer = null, retry = 0;

  function send(m) { m.v = 1; if (ws && ws.readyState === 1) ws.send(JSON.stringify(m)); }

  function tick() {
    clearTimeout(timer);
    var left = deadline - performance.now();
    document.getElementById('countdown').textContent = spell(left);
    if (left <= 0) { send({ type: 'hello', token: token }); return; }
    timer = setTimeout(tick, (left % 1000) || 1000);
  }

  function status(text) { document.getElementById('room-status').textContent = text; }

  function close(message) {
    final = true;
    document.getElementById('closed-message').textContent = message;
    show('closed');
  }

  function onMessage(m) {
    switch (m.type) {
      case 'countdown':
        // Counted from the server's time left, not the device's clock.
        deadline = performance.now() + m.ms_left;
        document.getElementById('opens-at').textContent = new Date(m.opens_at).toLocaleTimeString(en ? 'en-GB' : 'it-IT', { hour: '2-digit', minute: '2-digit', timeZone: 'Europe/Rome' });
        show('countdown');
        tick();
        break;
      case 'ready':
        retry = 0;
        if (joined && myName) { send({ type: 'join', name: myName }); break; }
        show('ready');
        break;
      case 'waiting':
        joined = true;
        show('in');
        status(T.waiting[m.waiting_for]);
        break;
      case 'peer_joined':
        joined = true;
        peerName = m.name;
        show('in');
        status(T.joined(m.name));
        document.dispatchEvent(new CustomEvent('sportello:peer-joined', { detail: m }));
        break;
      case 'peer_left':
        if (m.role === other) {
          status(m.reason === 'connection_lost' ? T.lost(peerName) : T.left(peerName));
          document.dispatchEvent(new CustomEvent('sportello:peer-left', { detail: m }));
        } else if (role === 'operator') {
          document.getElementById('operator-notice').hidden = true;
        }
        break;
      case 'citizen_waiting':
        var n = document.getElementById('operator-notice');
        n.textContent = T.citizenWaiting(m.name);
        n.hidden = false;
        break;
      case 'replaced':
        close(T.replaced);
        break;
      case 'offer': case 'answer': case 'ice':
        document.dispatchEvent(new CustomEvent('sportello:signal', { detail: m }));
        break;
      case 'error':
        if (['bad_token', 'wrong_room', 'ended', 'cancelled', 'not_confirmed'].indexOf(m.code) >= 0) {
          close(m.message.split(' / ')[en ? 1 : 0] || m.message);
        }
        break;
    }
  }

  function connect() {
    var scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
    ws = new WebSocket(scheme + location.host + '/ws/stanza/' + encodeURIComponent(code));
    ws.onopen = function () { send({ type: 'hello', token: token }); };
    ws.onmessage = function (e) {
      try { onMessage(JSON.parse(e.data)); } catch (err) { /* ignore what we cannot read */ }
    };
    ws.onclose = function (e) {
      if (final || e.code === 4409 || e.code === 4410 || e.code === 4401 || e.code === 4403) { return; }
      if (joined) { status(T.reconnecting); }
      retry = Math.min(retry + 1, 5);
      setTimeout(connect, 500 * retry);
    };
  }

  document.getElementById('enter').addEventListener('click', function () {
    var f = document.getElementById('join-form');
    f.hidden = false;
    document.getElementById('name').focus();
  });
  document.getElementById('join-form').addEventListener('submit', function (e) {
    e.preventDefault();
    myName = document.getElementById('name').value.trim();
    if (myName) send({ type: 'join', name: myName });
  });
  document.getElementById('leave').addEventListener('click', function () {
    joined = false;
    send({ type: 'leave' });
    show('ready');
  });
  window.sportelloRoom = { send: send };
  connect();
})();
