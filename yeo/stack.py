"""The local stand-in for a team's engines, a development tool: ``python -m yeo.stack up``
(``make stack-up``) starts PostgreSQL 15 (``initdb`` + ``pg_ctl``, run as the ``postgres`` user
when we are root, as PostgreSQL demands), moto's S3 server, ``mlflow server`` (PostgreSQL
backend, artifacts proxied into the bucket) and the ZenML server (uvicorn, its own SQLite store;
ZenML's SQL store speaks SQLite and MySQL only) on loopback ports, and registers the ZenML stack
``team`` (the default orchestrator, an S3 artifact store on the bucket). ``down`` stops what
``up`` started; ``register FILE`` and ``check`` handle the example stack files in
``conf/zenml/``. Runs connect to these engines through :mod:`yeo.team`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from yeo.errors import ConfigError, UserError
from yeo.io import atomic_write_text
from yeo.team import Started, TeamStack, credentials, load, settings_file, zenml_client_env


def pg_bin() -> Path:
    """``YEO_PG_BIN``, else the newest Debian PostgreSQL (``/usr/lib/postgresql/N/bin``)."""
    if os.environ.get("YEO_PG_BIN"):
        return Path(os.environ["YEO_PG_BIN"])
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    return found[-1].parent if found else Path("/usr/lib/postgresql/bin")


# --------------------------------------------------------------------------- local stand-in


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _wait_http(url: str, what: str, log: Path, timeout: float = 90.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as r:
            if r.status == 200:
                return
        time.sleep(0.5)
    raise UserError(f"{what} did not answer {url} within {timeout:.0f} s (log: {log})")


def _spawn(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> int:
    with log.open("ab") as out:
        proc = subprocess.Popen(
            cmd,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=os.environ | (env or {}),
            start_new_session=True,  # its own process group: down stops its children too
        )
    return proc.pid


def _run(cmd: list[str]) -> None:
    """Run a set-up command; a failure is one line with the tool's own last words."""
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if res.returncode:
        last = (res.stderr or res.stdout).strip().splitlines()[-1:] or ["no output"]
        raise UserError(
            f"{Path(cmd[cmd.index('--') + 1] if '--' in cmd else cmd[0]).name} "
            f"failed (exit {res.returncode}): {last[0]}"
        )


def _as_pg(cmd: list[str], user: str | None) -> list[str]:
    return ["runuser", "-u", user, "--", *cmd] if user else cmd


def _start_postgres(data: Path, host: str, port: int, logs: Path) -> str | None:
    """initdb + pg_ctl start; databases ``mlflow`` and ``optuna``. Returns the OS user it runs
    as (``postgres`` when we are root: PostgreSQL refuses to run as root)."""
    pg = pg_bin()
    if not (pg / "initdb").exists():
        raise UserError(
            f"PostgreSQL not found in {pg}: apt-get install postgresql (or set YEO_PG_BIN)"
        )
    user = "postgres" if os.geteuid() == 0 else None
    data.mkdir(parents=True)
    sock = data / "sock"
    if user:
        shutil.chown(data.parent, user)
        shutil.chown(data, user)
    _run(_as_pg([str(pg / "initdb"), "-D", str(data / "db"), "-U", "yeo", "-A", "trust"], user))
    sock.mkdir()
    if user:
        shutil.chown(sock, user)
    opts = f"-h {host} -p {port} -k {sock}"
    log = data / "postgres.log"  # inside the data dir: the postgres user must write it
    pg_ctl = [str(pg / "pg_ctl"), "-D", str(data / "db")]
    _run(_as_pg([*pg_ctl, "-l", str(log), "-w", "-t", "60", "-o", opts, "start"], user))
    for db in ("mlflow", "optuna"):
        _run([str(pg / "createdb"), "-h", host, "-p", str(port), "-U", "yeo", db])
    shutil.copy(log, logs / "postgres.log")
    return user


def _stop_postgres(data: Path, user: str | None) -> None:
    if (data / "db" / "postmaster.pid").exists():
        subprocess.run(
            _as_pg(
                [str(pg_bin() / "pg_ctl"), "-D", str(data / "db"), "-m", "fast", "-w", "stop"], user
            ),
            capture_output=True,
            timeout=60,
        )
    shutil.rmtree(data, ignore_errors=True)


def _kill_group(pid: int, timeout: float = 15.0) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            os.killpg(pid, 0)
            time.sleep(0.2)
        os.killpg(pid, signal.SIGKILL)


def up(state: Path, host: str = "127.0.0.1", bucket: str = "yeo") -> TeamStack:
    """Start the four engines on loopback ports and register the ZenML stack ``team``."""
    path = settings_file(state)
    if path.exists():
        raise UserError(f"a team stack is already up ({path}): make stack-down first")
    if not host.startswith("127.") and host != "localhost":
        raise ConfigError(f"the local team stack binds loopback addresses only, not {host}")
    logs = path.parent / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    # PostgreSQL's data dir lives outside the workspace: its OS user must reach it
    pg_data = Path(tempfile.mkdtemp(prefix="yeo-pg-")) / "pg"
    ports = {k: _free_port(host) for k in ("postgres", "s3", "mlflow", "zenml")}
    creds = {  # moto accepts any key; generated per stack, kept with its settings (0600)
        "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID") or "yeo-" + secrets.token_hex(4),
        "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY") or secrets.token_hex(16),
        "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
    }
    s3 = f"http://{host}:{ports['s3']}"
    stack = TeamStack(
        zenml_url=f"http://{host}:{ports['zenml']}",
        mlflow_uri=f"http://{host}:{ports['mlflow']}",
        s3_endpoint=s3,
        bucket=bucket,
        optuna_storage=f"postgresql://yeo@{host}:{ports['postgres']}/optuna",
    )
    pids: dict[str, int] = {}
    pg_user: str | None = None
    bin_dir = Path(sys.executable).parent
    try:
        _say(f"starting PostgreSQL, S3 (moto), MLflow and ZenML on {host}; logs in {logs}")
        pg_user = _start_postgres(pg_data, host, ports["postgres"], logs)
        _say(f"PostgreSQL ready on port {ports['postgres']}")
        pids["s3"] = _spawn(
            [str(bin_dir / "moto_server"), "-H", host, "-p", str(ports["s3"])],
            logs / "s3.log",
            creds,
        )
        _wait_http(f"{s3}/moto-api/", "the S3 server (moto)", logs / "s3.log")
        _make_bucket(s3, bucket, creds)
        _say(f"S3 ready on port {ports['s3']}, bucket {bucket}")
        pids["mlflow"] = _spawn(
            [
                str(bin_dir / "mlflow"),
                "server",
                "--host",
                host,
                "--port",
                str(ports["mlflow"]),
                "--workers",
                "1",
                "--backend-store-uri",
                f"postgresql://yeo@{host}:{ports['postgres']}/mlflow",
                "--artifacts-destination",
                f"s3://{bucket}/mlflow",
            ],
            logs / "mlflow.log",
            # no GenAI job runner: it would start seven worker processes on a 2-core box
            creds | {"MLFLOW_S3_ENDPOINT_URL": s3, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"},
        )
        zen_dir = path.parent / "zenml-server"
        pids["zenml"] = _spawn(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "zenml.zen_server.zen_server_api:app",
                "--host",
                host,
                "--port",
                str(ports["zenml"]),
            ],
            logs / "zenml.log",
            {
                "ZENML_STORE_URL": f"sqlite:///{zen_dir / 'zenml.db'}",
                "ZENML_CONFIG_PATH": str(zen_dir / "config"),
                "ZENML_SERVER_AUTH_SCHEME": "NO_AUTH",  # loopback only; a real one uses OAuth2
                "ZENML_SERVER_AUTO_ACTIVATE": "true",  # creates the default user NO_AUTH acts as
                "ZENML_ANALYTICS_OPT_IN": "false",
            },
        )
        _wait_http(f"{stack.zenml_url}/health", "the ZenML server", logs / "zenml.log")
        _say(f"ZenML server ready on port {ports['zenml']}")
        _wait_http(f"{stack.mlflow_uri}/health", "the MLflow server", logs / "mlflow.log")
        _say(f"MLflow server ready on port {ports['mlflow']}")
        started = Started(
            stack=stack, pids=pids, pg_data=str(pg_data), pg_user=pg_user, logs=str(logs)
        )
        atomic_write_text(path, started.model_dump_json(indent=2))
        path.chmod(0o600)
        atomic_write_text(path.with_name("team.env"), _env_file(creds))
        path.with_name("team.env").chmod(0o600)
    except BaseException:
        _stop(pids, pg_data, pg_user)
        raise
    return stack


def _say(message: str) -> None:
    """Progress of ``up`` (a minute or more on 2 cores), on stderr: stdout carries results."""
    print(f"yeo.stack: {message}", file=sys.stderr, flush=True)


def _env_file(creds: dict[str, str]) -> str:
    return "".join(f"{k}={v}\n" for k, v in creds.items())


def _make_bucket(endpoint: str, bucket: str, creds: dict[str, str]) -> None:
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=creds["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=creds["AWS_SECRET_ACCESS_KEY"],
        region_name=creds["AWS_DEFAULT_REGION"],
    )
    s3.create_bucket(Bucket=bucket)


def register(stack: TeamStack, state: Path) -> None:
    """Register (once) the ZenML stack ``team`` on the server: default orchestrator, an S3
    artifact store on the bucket with the endpoint from the settings."""
    zenml_client_env(stack, state)
    from zenml.client import Client

    client = Client()
    if any(s.name == stack.zenml_stack for s in client.list_stacks(size=100)):
        return
    conf: dict[str, object] = {"path": stack.artifact_root}
    if stack.s3_endpoint:
        conf["client_kwargs"] = {"endpoint_url": stack.s3_endpoint}
    client.create_stack_component(
        name=f"{stack.zenml_stack}-s3",
        flavor="s3",
        component_type="artifact_store",
        configuration=conf,
    )
    client.create_stack(
        name=stack.zenml_stack,
        components={"artifact_store": f"{stack.zenml_stack}-s3", "orchestrator": "default"},
    )


# --------------------------------------------------------------------------- example stacks


def _flavors() -> dict[tuple[str, str], Any]:
    """(component type, flavor name) -> flavor class: ZenML's built-in ones and those of its
    integrations (their config classes import without the integrations' own packages)."""
    from zenml.integrations.registry import integration_registry
    from zenml.stack.flavor_registry import FlavorRegistry

    classes = list(FlavorRegistry().builtin_flavors)
    for integration in integration_registry.integrations.values():
        with contextlib.suppress(ImportError):
            classes += integration.flavors()
    out = {}
    for cls in classes:
        flavor = cls()
        out[(str(getattr(flavor.type, "value", flavor.type)), str(flavor.name))] = cls
    return out


def check_stack_file(path: Path) -> list[str]:
    """Faults of a stack file (``conf/zenml/*.yaml``: ``stack_name`` and ``components``, each
    ``flavor``/``name``/``configuration``), found by ZenML's own flavor config classes; keys
    a flavor does not have are faults too (ZenML would ignore them silently)."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        return [f"{path}: {' '.join(str(e).split())}"]
    if not isinstance(data, dict) or not data.get("stack_name") or not data.get("components"):
        return [f"{path}: needs stack_name and components"]
    flavors, faults = _flavors(), []
    for ctype, comp in data["components"].items():
        where = f"{path.name}: {ctype}"
        cls = flavors.get((ctype, str(comp.get("flavor"))))
        if cls is None:
            faults.append(f"{where}: ZenML has no {ctype} flavor {comp.get('flavor')!r}")
            continue
        config_class = cls().config_class
        conf = comp.get("configuration") or {}
        unknown = sorted(set(conf) - set(config_class.model_fields))
        if unknown:
            faults.append(f"{where} ({comp['flavor']}): unknown keys {unknown}")
        try:
            config_class(**conf)
        except Exception as e:  # pydantic's, and ZenML's own (e.g. ArtifactStoreInterfaceError)
            faults.append(f"{where} ({comp['flavor']}): {' '.join(str(e).split())[:300]}")
    return faults


def register_stack_file(path: Path) -> str:
    """Register a checked stack file's components and stack in the connected ZenML store."""
    import yaml
    from zenml.client import Client

    faults = check_stack_file(path)
    if faults:
        raise ConfigError(faults[0])
    data = yaml.safe_load(path.read_text())
    client = Client()
    ids = {}
    for ctype, comp in data["components"].items():
        model = client.create_stack_component(
            name=comp["name"],
            flavor=comp["flavor"],
            component_type=ctype,
            configuration=comp.get("configuration") or {},
        )
        ids[ctype] = model.id
    client.create_stack(name=data["stack_name"], components=ids)
    return str(data["stack_name"])


def _stop(pids: dict[str, int], pg_data: Path, pg_user: str | None) -> None:
    for pid in pids.values():
        _kill_group(pid)
    _stop_postgres(pg_data, pg_user)
    shutil.rmtree(pg_data.parent, ignore_errors=True)


def down(state: Path) -> bool:
    """Stop what ``up`` started; False when nothing was up."""
    path = settings_file(state)
    if not path.is_file():
        return False
    started = Started.model_validate_json(path.read_text())
    _stop(started.pids, Path(started.pg_data), started.pg_user)
    shutil.rmtree(path.parent / "zenml-server", ignore_errors=True)
    path.with_name("team.env").unlink(missing_ok=True)
    path.unlink()
    return True


def main(argv: list[str] | None = None) -> int:
    from yeo import env

    ws = env.configure()
    p = argparse.ArgumentParser(prog="python -m yeo.stack", description=__doc__.splitlines()[0])
    p.add_argument("action", choices=["up", "down", "show", "check", "register"])
    p.add_argument("files", nargs="*", type=Path, help="stack files (check, register)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--bucket", default=os.environ.get("YEO_BUCKET", "yeo"))
    args = p.parse_args(argv)
    try:
        if args.action == "up":
            t0 = time.monotonic()
            stack = up(ws.state, args.host, args.bucket)
            os.environ.update(credentials(ws.state))
            register(stack, ws.state)
            print(f"team stack up in {time.monotonic() - t0:.0f} s ({settings_file(ws.state)}):")
            print(stack.model_dump_json(indent=2))
            print("run on it: make run STACK=team  (python run.py --pipeline optimize stack=team)")
        elif args.action == "down":
            print("team stack stopped" if down(ws.state) else "no team stack was up")
        elif args.action == "check":
            files = args.files or sorted((env.CODE_ROOT / "conf" / "zenml").glob("*.yaml"))
            faults = [f for path in files for f in check_stack_file(path)]
            for fault in faults:
                print(f"yeo.stack: FAIL {fault}", file=sys.stderr)
            if faults:
                return 1
            print(f"yeo.stack: OK {len(files)} stack file(s) accepted by ZenML's flavor configs")
        elif args.action == "register":
            zenml_client_env(load(ws.state), ws.state)
            for path in args.files:
                print(f"registered ZenML stack {register_stack_file(path)}")
        else:
            print(load(ws.state).model_dump_json(indent=2))
    except (UserError, ConfigError) as e:
        print(f"yeo.stack: error: {e}", file=sys.stderr)
        return 2 if isinstance(e, ConfigError) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
