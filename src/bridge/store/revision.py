"""Write a new migration with Alembic's autogenerate, against a scratch database at the newest revision.

    python -m bridge.store.revision "Runs record the replica that ran them"
    python -m bridge.store.revision "..." --url postgresql+psycopg://postgres@127.0.0.1:5432/scratch

The scratch database (a new SQLite file in a temporary folder, or an empty database named by `--url`)
is migrated to the head, then compared with the models in `bridge.store.models`; what differs becomes
`versions/NNNN_<words of the message>.py`, following the head. Read it and finish it by hand (data
moves and server defaults are not guessed), then run
`pytest tests/store/test_migrations.py tests/store/test_schema_tooling.py`, which fails while the
migrations and the models disagree or while there is more than one head.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

from alembic import command

from bridge.store.engine import Store
from bridge.store.migrate import MIGRATIONS, alembic_config, history


def next_revision_id() -> str:
    """The next of the numbered revisions (`0004` after `0003`)."""
    numbers = [int(info.id) for info in history() if info.id.isdigit()]
    return f"{max(numbers, default=0) + 1:04d}"


def autogenerate(message: str, url: str | None = None, directory: Path | None = None) -> Path:
    """Compare the models with a scratch database at head; write the differences as a new revision into
    `directory` (default: the package's versions folder) and return its path."""
    with tempfile.TemporaryDirectory(prefix="bridge-revision-") as scratch:
        store = Store(url or f"sqlite:///{Path(scratch) / 'scratch.db'}")
        try:
            store.ping()
            if store.current_revision() is not None:
                raise SystemExit("the scratch database must be empty: it is migrated to the head first")
            store.upgrade()
            with store.write() as conn:
                cfg = alembic_config(conn)
                cfg.set_main_option("timezone", "UTC")
                target = directory or MIGRATIONS / "versions"
                if directory is not None:
                    cfg.set_main_option("path_separator", "os")
                    folders = (MIGRATIONS / "versions", directory)
                    cfg.set_main_option("version_locations", os.pathsep.join(map(str, folders)))
                script = command.revision(
                    cfg,
                    message=message,
                    autogenerate=True,
                    rev_id=next_revision_id(),
                    version_path=str(target),
                )
        finally:
            store.close()
    if script is None or isinstance(script, list):
        raise SystemExit("alembic wrote no single revision")
    return Path(script.path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bridge.store.revision", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument("message", help="What the revision changes, in one sentence (its docstring).")
    parser.add_argument("--url", help="An empty scratch database (default: a new SQLite file).")
    args = parser.parse_args(argv)
    print(autogenerate(args.message, args.url))


if __name__ == "__main__":
    main()
