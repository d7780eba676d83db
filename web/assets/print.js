// The receipt's "Print" button (no inline script: the pages' Content-Security-Policy allows
// scripts only from the site's own files).
document.getElementById('print')?.addEventListener('click', () => window.print());
