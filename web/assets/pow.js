// The booking form's proof of work: ALTCHA's widget (npm `altcha` 3.2.2, MIT, see
// altcha/LICENSE; the build without inline styles or workers, for the site's CSP), its Italian
// texts, and its PBKDF2 worker served from here. The widget fetches a challenge from this
// server, solves it in the background and adds the answer to the form as the `altcha` field.
import '/static/altcha/altcha.min.js';
import '/static/altcha/altcha-it.js';

globalThis.$altcha.algorithms.set('PBKDF2/SHA-256', () => new Worker('/static/altcha/pbkdf2.js'));
