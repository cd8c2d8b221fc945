// Docker health check: healthy means ready for webhooks. n8n answers /healthz (and a 200
// "starting up" page) before its migrations end; /rest/settings answers JSON only once its
// routes exist.
'use strict';
const http = require('http');

const port = Number(process.env.N8N_PORT || 5678);
const request = http.get({ host: '127.0.0.1', port, path: '/rest/settings', timeout: 3000 }, (res) => {
  let body = '';
  res.setEncoding('utf8');
  res.on('data', (chunk) => { body += chunk; });
  res.on('end', () => {
    if (res.statusCode !== 200) {
      console.log(`not ready: HTTP ${res.statusCode}`);
      process.exit(1);
    }
    try {
      JSON.parse(body);
    } catch (err) {
      console.log('not ready: /rest/settings did not answer JSON');
      process.exit(1);
    }
    console.log('ready');
    process.exit(0);
  });
});
request.on('timeout', () => { request.destroy(new Error('timed out')); });
request.on('error', (err) => { console.log(`not ready: ${err.message}`); process.exit(1); });
