//! Database outages caused for real on a private PostgreSQL cluster: restart, stop, SIGSTOP.
