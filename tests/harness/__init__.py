"""Real servers on loopback for the tests, molecule and the benchmark.

Each server class starts a real process (PostgreSQL 15, n8n, ...), waits until it is
ready, and stops it again. A server that cannot start raises HarnessError with what
went wrong; nothing here skips silently.
"""
