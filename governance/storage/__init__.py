"""PostgreSQL: engine and sessions, the tables, the migrations runner and the repository."""
