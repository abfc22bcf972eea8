"""The ``mailroom`` command line, driven through typer's CliRunner (and once as a real process)."""

from __future__ import annotations

import asyncio
import csv
import io
import os
import shutil
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import yaml
from typer.testing import CliRunner, Result

from mailroom import bootstrap
from mailroom.cli import app
from mailroom.cli import serve as serve_module
from mailroom.cli._object_index import OBJECTS
from mailroom.cli._settings_doc import DOC_PATH, UNDOCUMENTED, render_table, table_in_doc
from mailroom.cli.objects import HANDWRITTEN, INDEX_PATH, object_index, render_index, singular, split_name
from mailroom.settings import load_settings
from tests.conftest import FAST_ARGON2

SECRET = "cli-test-secret-key-not-for-production"


@pytest.fixture
def env(tmp_path: Path, database_url: str) -> dict[str, str]:
    """The environment of a deployment in a temporary data folder (the test database)."""
    return {
        "MAILROOM_DATA_DIR": str(tmp_path / "data"),
        "MAILROOM_DATABASE_URL": database_url,
        "MAILROOM_MODE": "test",
        "MAILROOM_SECRET_KEY": SECRET,
        "MAILROOM_POP3_PORT": "0",  # the default ports may belong to another server here
        "MAILROOM_POP3S_PORT": "0",
        "MAILROOM_IMAP_PORT": "0",
        "MAILROOM_IMAPS_PORT": "0",
        **{f"MAILROOM_{k.upper()}": str(v) for k, v in FAST_ARGON2.items()},
    }


@pytest.fixture
def isolated_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Commands that export MAILROOM_* variables (serve) change a copy, not this process."""
    monkeypatch.setattr(os, "environ", os.environ.copy())


def run(env: dict[str, str], *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env=env, input=input)


def ok(env: dict[str, str], *args: str, input: str | None = None) -> Result:
    result = run(env, *args, input=input)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result


def as_json(env: dict[str, str], *args: str) -> Any:
    return orjson.loads(ok(env, *args, "--json").stdout)


# -- generated object commands ---------------------------------------------------------------


def test_help_works_for_every_generated_command(env: dict[str, str]) -> None:
    settings = load_settings(data_dir=env["MAILROOM_DATA_DIR"], mode="test")
    registry = bootstrap.build_registry(settings)
    top = ok(env, "--help").stdout
    checked = 0
    for spec in registry.methods("admin"):
        split = split_name(spec)
        assert split is not None
        objects, verb = split
        if objects in HANDWRITTEN:
            continue
        assert singular(objects) in top
        result = ok(env, singular(objects), verb.replace("_", "-"), "--help")
        assert spec.name in result.stdout  # the epilog names the method
        first_words = " ".join(spec.summary.split()[:3])
        assert first_words in " ".join(result.stdout.replace("│", " ").split())
        checked += 1
    assert checked >= 20
    assert "serve" in top
    assert "config" in top


def test_domain_create_list_update_delete(env: dict[str, str]) -> None:
    created = ok(env, "domain", "create", "--name", "Example.ORG", "--max-users", "5", "--comment", "main")
    assert "example.org" in created.stdout
    ok(env, "domain", "create", "--name", "b.example")
    table = ok(env, "domain", "list").stdout
    assert table.index("b.example") < table.index("example.org")
    assert "max_users" in table
    listed = as_json(env, "domain", "list")
    assert [d["name"] for d in listed["items"]] == ["b.example", "example.org"]
    assert listed["total"] == 2

    updated = as_json(env, "domain", "update", "example.org", "--max-users", "null", "--no-signup-enabled")
    assert updated["max_users"] is None
    assert updated["comment"] == "main"  # absent options change nothing
    assert as_json(env, "domains", "get", "example.org")["max_users"] is None  # the plural works too

    deleted = ok(env, "domain", "delete", "b.example")
    assert deleted.stdout.strip() == "deleted domain b.example"
    missing = run(env, "domain", "get", "b.example")
    assert missing.exit_code == 1
    assert "not_found: domain b.example not found" in missing.stderr
    assert missing.stdout == ""


def test_validation_errors_list_each_field_with_its_option(env: dict[str, str]) -> None:
    result = run(env, "domain", "create", "--name", "no_dots", "--max-users", "-1")
    assert result.exit_code == 1
    assert "error: invalid_params" in result.stderr
    assert "domain.name (--name): " in result.stderr
    assert "domain.max_users (--max-users): Input should be greater than or equal to 0" in result.stderr
    missing = run(env, "domain", "create")
    assert missing.exit_code == 1
    assert "domain.name (--name): required" in missing.stderr
    assert as_json(env, "domain", "list")["total"] == 0


def test_lists_nested_json_and_literal_options(env: dict[str, str]) -> None:
    ok(env, "domain", "create", "--name", "example.org")
    user = as_json(
        env,
        "user", "create", "--email", "alice@example.org", "--password", "correct horse battery",
        "--forward-destinations", "a@elsewhere.example", "--forward-destinations", "b@elsewhere.example",
        "--spam-threshold", "7.5",
    )  # fmt: skip
    assert user["forward_destinations"] == ["a@elsewhere.example", "b@elsewhere.example"]
    assert user["spam_threshold"] == 7.5
    key = as_json(env, "dkim", "generate", "example.org", "--bits", "1024", "--selector", "s1")
    assert key["bits"] == 1024
    raw = as_json(
        env,
        "alias",
        "create",
        "--params",
        '{"alias": {"address": "info@example.org", "destinations": ["alice@example.org"]}}',
    )
    assert raw["address"] == "info@example.org"
    bad = run(env, "alias", "create", "--params", "[1]")
    assert bad.exit_code == 1
    assert "--params: give a JSON object" in bad.stderr


def test_apikey_create_prints_the_key_last_and_only_once(env: dict[str, str]) -> None:
    result = ok(env, "apikey", "create", "--admin", "--name", "ops")
    lines = result.stdout.rstrip("\n").splitlines()
    key = lines[-1]
    assert key.startswith("mr_")
    assert (result.stdout + result.stderr).count(key) == 1
    assert "ops" in result.stdout  # the details come first
    assert "shown this once" in result.stderr
    listed = as_json(env, "apikey", "list")
    assert [k["name"] for k in listed["items"]] == ["ops"]
    assert key.split("_")[1] == listed["items"][0]["id"]

    async def check() -> None:
        settings = load_settings(mode="test", secret_key=SECRET)
        mailroom = await bootstrap.start(settings, run_migrations=False)
        try:
            principal = await mailroom.authenticator.bearer(key, "127.0.0.1")
        finally:
            await mailroom.close()
        assert principal.is_admin

    old = dict(os.environ)
    os.environ.update(env)
    try:
        asyncio.run(check())
    finally:
        os.environ.clear()
        os.environ.update(old)


# -- config export / import ----------------------------------------------------------------


def test_config_export_and_import(env: dict[str, str], tmp_path: Path) -> None:
    ok(env, "domain", "create", "--name", "example.org")
    ok(env, "user", "create", "--email", "alice@example.org", "--password", "correct horse battery")
    ok(env, "alias", "create", "--address", "info@example.org", "--destinations", "alice@example.org")
    path = tmp_path / "config.yaml"
    ok(env, "config", "export", "-o", str(path))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert "password_hash" not in text
    document = yaml.safe_load(text)
    assert [u["email"] for u in document["users"]] == ["alice@example.org"]
    assert ok(env, "config", "export").stdout == text  # stable: two exports are identical

    same = ok(env, "config", "import", str(path), "--dry-run")
    assert "dry run: 0 to create, 0 to update, 0 to delete; nothing was changed" in same.stdout

    document["domains"][0]["max_users"] = 3
    document["relays"] = [{"name": "relay.example", "smarthost": "mx.relay.example"}]
    path.write_text(yaml.safe_dump(document))
    planned = ok(env, "config", "import", str(path), "--dry-run")
    assert "max_users: None → 3" in planned.stdout
    assert "relay.example" in planned.stdout
    assert "dry run: 1 to create, 1 to update, 0 to delete" in planned.stdout
    assert ok(env, "config", "export").stdout == text  # the dry run changed nothing

    done = ok(env, "config", "import", "-", input=path.read_text())
    assert "done: 1 created, 1 updated, 0 deleted" in done.stdout
    again = as_json(env, "config", "import", str(path))
    assert again["changes"] == []

    hashes = ok(env, "config", "export", "--with-password-hashes").stdout
    assert "password_hash: $argon2id$" in hashes
    assert "keep it private" in hashes


def test_config_import_dry_run_on_an_empty_data_folder_creates_nothing(
    env: dict[str, str], tmp_path: Path
) -> None:
    """No database and no secret yet: the dry run plans against a scratch database and leaves
    the data folder as it was (here: not there at all)."""
    fresh = {k: v for k, v in env.items() if k not in ("MAILROOM_DATABASE_URL", "MAILROOM_SECRET_KEY")}
    data = tmp_path / "empty"
    fresh["MAILROOM_DATA_DIR"] = str(data)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump({"domains": [{"name": "example.org"}]}))
    planned = ok(fresh, "config", "import", str(path), "--dry-run")
    assert "dry run: 1 to create, 0 to update, 0 to delete; nothing was changed" in planned.stdout
    assert not data.exists()
    data.mkdir()
    ok(fresh, "config", "import", str(path), "--dry-run")
    assert list(data.iterdir()) == []
    # A real import then creates the database and the secret, and a later dry run sees it.
    assert "done: 1 created" in ok(fresh, "config", "import", str(path)).stdout
    assert {p.name for p in data.iterdir()} >= {"mailroom.db", "secret_key"}
    assert "dry run: 0 to create" in ok(fresh, "config", "import", str(path), "--dry-run").stdout


def test_config_import_errors(env: dict[str, str], tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("users: [{email: 'not an address', password: 'long enough pw'}]\n")
    result = run(env, "config", "import", str(path))
    assert result.exit_code == 1
    assert "document.users.0.email" in result.stderr
    path.write_text("domains: [\n")
    result = run(env, "config", "import", str(path))
    assert result.exit_code == 1
    assert "is not valid YAML" in result.stderr
    path.write_text("- a list\n")
    assert "must hold a mapping" in run(env, "config", "import", str(path)).stderr
    missing = run(env, "config", "import", str(tmp_path / "nope.yaml"))
    assert missing.exit_code == 1
    assert "cannot read" in missing.stderr


# -- methods, settings, db ---------------------------------------------------------------------


def test_methods_lists_and_describes(env: dict[str, str]) -> None:
    everything = ok(env, "methods").stdout
    assert "admin.domains.create" in everything
    assert "system.health.get" in everything
    assert "POST /domains" in everything
    admin_only = as_json(env, "methods", "admin")
    assert all(m["method"].startswith("admin.") for m in admin_only)
    assert {"method": "admin.config.export", "access": "admin", "rest": "GET /config"}.items() <= next(
        m for m in admin_only if m["method"] == "admin.config.export"
    ).items()
    described = ok(env, "methods", "describe", "admin.domains.create").stdout
    assert "access:   admin" in described
    assert "domain.max_users" in described
    raw = as_json(env, "methods", "describe", "admin.domains.create")
    assert raw["http"] == {"method": "POST", "path": "/domains"}
    unknown = run(env, "methods", "describe", "admin.nothing.here")
    assert unknown.exit_code == 1
    assert "method_not_found" in unknown.stderr
    assert run(env, "methods", "nosuchapi").exit_code == 1


def test_settings_are_masked_and_follow_precedence(env: dict[str, str], tmp_path: Path) -> None:
    toml = tmp_path / "mailroom.toml"
    toml.write_text('[mailroom]\nport = 9000\nhostname = "mx.toml.example"\nworkers = 3\n')
    env = env | {
        "MAILROOM_CONFIG": str(toml),
        "MAILROOM_PORT": "9100",
        "MAILROOM_REDIS_URL": "redis://u:pw@r:6379/0",
    }
    shown = as_json(env, "--data-dir", str(tmp_path / "flag"), "settings")
    assert shown["data_dir"] == str(tmp_path / "flag")  # flag > environment
    assert shown["port"] == 9100  # environment > TOML
    assert shown["hostname"] == "mx.toml.example"  # TOML > default
    assert shown["workers"] == 3
    assert shown["secret_key"] == "**********"
    assert shown["redis_url"] == "redis://u:****@r:6379/0"
    text = ok(env, "settings").stdout
    assert SECRET not in text
    assert "pw@" not in text
    assert "port = 9100" in text
    assert '# secret_key = "**********"  (masked)' in text


def test_bad_settings_exit_1(env: dict[str, str], tmp_path: Path) -> None:
    result = run(env | {"MAILROOM_PORT": "not-a-port"}, "settings")
    assert result.exit_code == 1
    assert "invalid settings" in result.stderr
    assert "port" in result.stderr
    result = run(env, "--config", str(tmp_path / "missing.toml"), "domain", "list")
    assert result.exit_code == 1
    assert "missing.toml" in result.stderr
    production = run(env | {"MAILROOM_MODE": "production", "MAILROOM_SECRET_KEY": "changeme"}, "settings")
    assert production.exit_code == 1
    assert "well-known default" in production.stderr


def test_db_upgrade_and_current(env: dict[str, str], tmp_path: Path) -> None:
    fresh = env | {"MAILROOM_DATA_DIR": str(tmp_path / "fresh"), "MAILROOM_DATABASE_URL": ""}
    fresh.pop("MAILROOM_DATABASE_URL")
    assert ok(fresh, "db", "current").stdout.strip() == "none"
    upgraded = ok(fresh, "db", "upgrade").stdout.strip()
    assert upgraded.startswith("database at revision ")
    revision = upgraded.removeprefix("database at revision ")
    assert ok(fresh, "db", "current").stdout.strip() == revision
    assert (tmp_path / "fresh" / "mailroom.db").exists()


# -- serve -------------------------------------------------------------------------------------


def test_serve_prints_the_first_admin_key_once_and_runs_uvicorn(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated_environ: None
) -> None:
    calls: list[dict[str, Any]] = []

    def fake_run_workers(config: Any, bound: Any) -> None:
        # What a worker started now would see: the environment, the settings it builds from
        # it (as mailroom.asgi.create_app does) and the sockets it inherits.
        env = {k: v for k, v in os.environ.items() if k.startswith("MAILROOM_")}
        ports = {name: bound.address(name)[1] for name in bound.sockets}
        calls.append({"config": config, "env": env, "worker": load_settings(), "ports": ports})

    monkeypatch.setattr(serve_module, "run_workers", fake_run_workers)
    data = tmp_path / "data"
    http, smtp = _free_port(), _free_port()
    ports = ["--port", str(http), "--smtp-port", str(smtp), "--lmtp-port", "0", "--submission-port", "0"]
    env = {**env, "MAILROOM_IMAP_PORT": "0", "MAILROOM_IMAPS_PORT": "0"}
    first = ok(env, "serve", *ports, "--workers", "2", "--data-dir", str(data))
    key = first.stdout.strip()
    assert key.startswith("mr_")
    assert first.stdout.count("\n") == 1  # the key alone on standard output
    assert "shown this once" in first.stderr
    second = ok(env, "serve", *ports)
    assert second.stdout == ""
    assert "mr_" not in second.stderr

    call = calls[0]
    config = call["config"]
    assert config.factory is True
    assert config.app.target == "mailroom.asgi:create_app"
    assert sorted(config.app.sockets) == ["smtp"]  # the app serves the mail listeners, uvicorn HTTP
    assert call["ports"] == {"http": http, "smtp": smtp}
    assert config.loop == "uvloop"
    assert config.http == "httptools"
    assert {h["stream"] for h in config.log_config["handlers"].values()} == {"ext://sys.stderr"}
    assert (config.host, config.port, config.workers) == ("127.0.0.1", http, 2)
    assert call["env"]["MAILROOM_PORT"] == str(http)
    assert call["env"]["MAILROOM_WORKERS"] == "2"
    assert call["env"]["MAILROOM_DATA_DIR"] == str(data.resolve())
    worker = call["worker"]
    assert (worker.port, worker.workers, worker.data_dir) == (http, 2, data.resolve())
    assert worker.database_url == env["MAILROOM_DATABASE_URL"]
    assert f"  http  http://127.0.0.1:{http}\n" in first.stderr
    assert f"  smtp  127.0.0.1:{smtp}\n" in first.stderr


def test_serve_help_shows_the_real_defaults(env: dict[str, str]) -> None:
    """Each serve option names the setting it overrides and that setting's default."""
    text = " ".join(run(env | {"COLUMNS": "200"}, "serve", "--help").stdout.split())
    for setting, shown in [
        ("host", "127.0.0.1"),
        ("port", "8025"),
        ("workers", "1"),
        ("data_dir", "data"),
        ("smtp_port", "2525"),
        ("lmtp_port", "2424"),
        ("submission_port", "2587"),
    ]:
        assert f"(setting {setting}; default {shown})" in text, (setting, text)


def test_serve_warns_on_the_banner_while_the_mail_host_name_is_a_placeholder(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch, isolated_environ: None
) -> None:
    monkeypatch.setattr(serve_module, "run_workers", lambda config, bound: None)
    ports = ["--port", str(_free_port()), "--smtp-port", "0", "--lmtp-port", "0", "--submission-port", "0"]
    placeholder = " ".join(ok(env, "serve", *ports).stderr.split())  # unwrap the console's lines
    assert "mailroom serving with 1 worker(s)" in placeholder
    assert "Warning: the mail host name is 'mail.example.org', a placeholder: set hostname" in placeholder
    real = ok({**env, "MAILROOM_HOSTNAME": "mail.mailhost.net"}, "serve", *ports).stderr
    assert "mailroom serving" in real
    assert "Warning" not in real
    assert "placeholder" not in real


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.mark.slow
def test_serve_for_real_with_two_workers(tmp_path: Path) -> None:
    """``python -m mailroom serve``: workers get the data folder through the environment."""
    port = _free_port()
    data = tmp_path / "data"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_")}
    environ |= {"MAILROOM_MODE": "test", **{f"MAILROOM_{k.upper()}": str(v) for k, v in FAST_ARGON2.items()}}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mailroom",
            "--data-dir",
            str(data),
            "serve",
            "--port",
            str(port),
            "--workers",
            "2",
            # Mail listeners off: the default ports may belong to another server on this host.
            *("--smtp-port", "0", "--lmtp-port", "0", "--submission-port", "0"),
        ],
        cwd=tmp_path,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        key = proc.stdout.readline().strip()
        if not key.startswith("mr_"):
            proc.terminate()
            _out, err = proc.communicate(timeout=30)
            pytest.fail(f"no key on stdout ({key!r}); stderr: {err}")
        deadline = time.monotonic() + 60
        while True:
            try:
                r = httpx.get(
                    f"http://127.0.0.1:{port}/api/v1/domains", headers={"Authorization": f"Bearer {key}"}
                )
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert r.status_code == 200
        assert r.json()["total"] == 0
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()
    assert (data / "mailroom.db").exists()
    assert (data / "secret_key").exists()


def test_python_dash_m_mailroom(tmp_path: Path) -> None:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_")} | {
        "MAILROOM_DATA_DIR": str(tmp_path)
    }
    done = subprocess.run(
        [sys.executable, "-m", "mailroom", "--help"], env=environ, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "mailroom <object> <verb>" in done.stdout


# -- start-up time ---------------------------------------------------------------------------

#: What ``mailroom --help`` and the simple commands must not import: the registry (every
#: service), the store (SQLAlchemy, Alembic), the servers and the crypto. Importing them
#: made every call take ~1.5 s on an idle machine.
HEAVY = (
    "sqlalchemy", "alembic", "uvicorn", "starlette", "redis", "pgpy", "cryptography", "aiosmtpd",
    "argon2", "mailroom.bootstrap", "mailroom.registry", "mailroom.services", "mailroom.store",
    "mailroom.delivery", "mailroom.frontends.smtp", "mailroom.frontends.rest",
)  # fmt: skip
_MODULES_AFTER = """
import sys
from mailroom.cli import main
sys.argv = ["mailroom", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
sys.stderr.write("\\n".join(sorted(sys.modules)))
"""


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        [],
        ["serve", "--help"],
        ["settings"],
        ["db", "--help"],
        ["config", "--help"],
        ["import", "--help"],
    ],
    ids=lambda args: " ".join(args) or "(none)",
)
def test_simple_commands_import_nothing_heavy(env: dict[str, str], args: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _MODULES_AFTER, *args],
        env={k: v for k, v in os.environ.items() if not k.startswith("MAILROOM_")} | env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    modules = set(done.stderr.splitlines())
    assert "mailroom.cli" in modules, done.stderr[-2000:]
    imported = sorted(m for m in modules if m.split(".")[0] in HEAVY or any(m.startswith(h) for h in HEAVY))
    assert imported == [], f"mailroom {' '.join(args)} imported {imported[:10]}"
    if args[:1] != ["settings"]:
        assert "Usage: mailroom" in done.stdout


def test_the_object_index_matches_the_registry(env: dict[str, str]) -> None:
    """``mailroom --help`` lists the objects from cli/_object_index.py: run scripts/gen-cli-index
    after adding an admin object (its commands work before that, only the listing lacks it)."""
    settings = load_settings(data_dir=env["MAILROOM_DATA_DIR"], mode="test")
    index = object_index(bootstrap.build_registry(settings).methods("admin"))
    assert index == OBJECTS, "src/mailroom/cli/_object_index.py is out of date: run scripts/gen-cli-index"
    assert render_index(index) == INDEX_PATH.read_text()
    top = " ".join(ok(env, "--help").stdout.split())
    for name in OBJECTS:
        assert f" {name} " in top, name


# -- docs ------------------------------------------------------------------------------------


def test_configuration_doc_lists_every_setting() -> None:
    """docs/configuration.md's table is generated: run scripts/gen-settings-doc after changing Settings."""
    assert table_in_doc(DOC_PATH.read_text()) == render_table(), (
        "docs/configuration.md is out of date: run scripts/gen-settings-doc"
    )


def test_every_setting_has_a_meaning() -> None:
    undocumented = [line.split("`")[1] for line in render_table().splitlines() if UNDOCUMENTED in line]
    assert undocumented == [], "give these Settings fields a description"


@pytest.fixture(autouse=True)
def _no_stray_data_dir(tmp_path: Path) -> Iterator[None]:
    """Commands must write only where they are told: never a ./data in the working tree."""
    before = Path("data").exists()
    yield
    if not before and Path("data").exists():
        shutil.rmtree("data")
        pytest.fail("a command created ./data instead of using the configured data folder")


def test_lists_and_reports_print_as_csv(env: dict[str, str]) -> None:
    """`--csv` prints a header row and one row per item; a single object refuses it clearly."""
    for name in ("b.example", "a.example"):
        ok(env, "domain", "create", "--name", name, "--max-users", "5")
    rows = list(csv.DictReader(io.StringIO(ok(env, "domain", "list", "--csv").stdout)))
    assert [r["name"] for r in rows] == ["a.example", "b.example"]
    assert rows[0]["max_users"] == "5"
    assert rows[0]["signup_enabled"] == "false"
    report = ok(env, "usage", "report", "--csv")
    assert report.stdout.splitlines()[0].startswith("period,")
    single = run(env, "domain", "get", "a.example", "--csv")
    assert single.exit_code == 1
    assert "--csv applies to lists" in single.output
