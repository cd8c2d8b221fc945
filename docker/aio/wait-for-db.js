// Waits until n8n's PostgreSQL database accepts n8n's login (DB_POSTGRESDB_* settings), for at most
// FEDERATION_DB_WAIT_SECONDS. Exits 0 when it does, 1 with the last error otherwise: the container
// then stops and its restart policy tries again.
'use strict';
const { Client } = require('/opt/n8n/node_modules/pg');

const env = process.env;
const limit = Number(env.FEDERATION_DB_WAIT_SECONDS || 120) * 1000;
const target = `${env.DB_POSTGRESDB_USER}@${env.DB_POSTGRESDB_HOST || 'localhost'}:${env.DB_POSTGRESDB_PORT || 5432}/${env.DB_POSTGRESDB_DATABASE}`;
const started = Date.now();
let attempts = 0;
let last = '';

async function attempt() {
  const client = new Client({
    host: env.DB_POSTGRESDB_HOST || 'localhost',
    port: Number(env.DB_POSTGRESDB_PORT || 5432),
    user: env.DB_POSTGRESDB_USER,
    password: env.DB_POSTGRESDB_PASSWORD,
    database: env.DB_POSTGRESDB_DATABASE,
    connectionTimeoutMillis: 3000,
  });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } finally {
    await client.end().catch(() => {});
  }
}

(async () => {
  for (;;) {
    attempts += 1;
    try {
      await attempt();
      console.log(`federation: database ${target} is ready (after ${attempts} attempt(s))`);
      process.exit(0);
    } catch (err) {
      const message = (err && (err.code ? `${err.code} ${err.message}` : err.message)) || String(err);
      if (message !== last) {
        console.log(`federation: waiting for database ${target}: ${message}`);
        last = message;
      }
    }
    if (Date.now() - started > limit) {
      console.error(`federation: database ${target} not ready after ${limit / 1000} s: ${last}`);
      process.exit(1);
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
})();
