#!/bin/sh
# Waits until n8n's PostgreSQL database accepts the configured login, then runs n8n.
# Started by tini, so n8n gets the signals (docker stop) and its children are reaped.
set -eu
# n8n 2.x calls out at boot from its MCP registry module; 1.x does not know the module (and refuses
# the setting), so it is disabled for 2.x only.
case "${N8N_VERSION:-}" in
  2.*) export N8N_DISABLED_MODULES="${N8N_DISABLED_MODULES-mcp-registry}" ;;
esac
if [ "${DB_TYPE:-sqlite}" = "postgresdb" ]; then
  node /opt/federation/wait-for-db.js
fi
exec "$@"
