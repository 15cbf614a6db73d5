"""Server-side state: SQLAlchemy 2 tables, engines, and Alembic migrations.

SQLite by default (a file in the data directory); PostgreSQL when
``PATCHLINE_DATABASE_URL`` says so. The device agent never imports this package.
"""
