"""A throw-away OpenLDAP ``slapd`` (Debian's) on loopback, for the LDAP back-end's tests.

One slapd per :func:`running_slapd`: a temporary folder with a ``slapd.conf`` (mdb database,
the core/cosine/inetorgperson schemas plus a small ``mailroom`` schema with a quota, alias
and enabled attribute), a self-signed certificate for LDAPS and StartTLS, and listeners on
two free loopback ports (``ldap://`` and ``ldaps://``). Entries are loaded with Debian's
``ldapadd``/``ldapmodify`` as the root DN. :meth:`Slapd.stop` and :meth:`Slapd.start`
take the directory down and up again on the same ports (the "directory down" tests).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mailroom.frontends.smtp.certificate import generate_self_signed

SLAPD = "/usr/sbin/slapd"
BASE = "dc=example,dc=org"
ROOT_DN = f"cn=admin,{BASE}"
ROOT_PASSWORD = "root-secret-not-for-production"
SERVICE_DN = f"cn=mailroom,ou=services,{BASE}"
SERVICE_PASSWORD = "service-secret-not-for-production"
PEOPLE = f"ou=people,{BASE}"
GROUPS = f"ou=groups,{BASE}"

#: Attributes a mail directory commonly adds (as the qmail or postfix-book schemas do).
MAILROOM_SCHEMA = """\
attributetype ( 1.3.6.1.4.1.99999.7.1.1 NAME 'mailQuota'
    DESC 'mailbox quota in bytes' EQUALITY integerMatch
    SYNTAX 1.3.6.1.4.1.1466.115.121.1.27 SINGLE-VALUE )
attributetype ( 1.3.6.1.4.1.99999.7.1.2 NAME 'mailAlias'
    DESC 'another address of the mailbox' EQUALITY caseIgnoreIA5Match
    SUBSTR caseIgnoreIA5SubstringsMatch SYNTAX 1.3.6.1.4.1.1466.115.121.1.26{256} )
attributetype ( 1.3.6.1.4.1.99999.7.1.3 NAME 'mailEnabled'
    DESC 'TRUE when the account may use mail' EQUALITY booleanMatch
    SYNTAX 1.3.6.1.4.1.1466.115.121.1.7 SINGLE-VALUE )
objectclass ( 1.3.6.1.4.1.99999.7.2.1 NAME 'mailroomUser' SUP top AUXILIARY
    MAY ( mailQuota $ mailAlias $ mailEnabled ) )
"""

CONFIG = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
include {dir}/mailroom.schema
pidfile {dir}/slapd.pid
argsfile {dir}/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
TLSCertificateFile {dir}/cert.pem
TLSCertificateKeyFile {dir}/key.pem
database mdb
maxsize 16777216
suffix "{base}"
rootdn "{root_dn}"
rootpw {root_password}
directory {dir}/db
access to attrs=userPassword
    by anonymous auth
    by self write
    by * none
access to *
    by dn.exact="{service_dn}" read
    by self read
    by * none
"""

BASE_ENTRIES = f"""\
dn: {BASE}
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: ou=services,{BASE}
objectClass: organizationalUnit
ou: services

dn: {SERVICE_DN}
objectClass: person
cn: mailroom
sn: mailroom
userPassword: {SERVICE_PASSWORD}

dn: {PEOPLE}
objectClass: organizationalUnit
ou: people

dn: {GROUPS}
objectClass: organizationalUnit
ou: groups
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), 0.2).close()
    except OSError:
        return False
    return True


@dataclass
class Slapd:
    folder: Path
    port: int = field(default_factory=free_port)
    tls_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def tls_url(self) -> str:
        return f"ldaps://127.0.0.1:{self.tls_port}"

    @property
    def ca_file(self) -> Path:
        return self.folder / "cert.pem"

    def prepare(self) -> None:
        (self.folder / "db").mkdir(parents=True)
        (self.folder / "mailroom.schema").write_text(MAILROOM_SCHEMA)
        generate_self_signed(self.folder / "cert.pem", self.folder / "key.pem", "localhost")
        (self.folder / "slapd.conf").write_text(
            CONFIG.format(
                dir=self.folder,
                base=BASE,
                root_dn=ROOT_DN,
                root_password=ROOT_PASSWORD,
                service_dn=SERVICE_DN,
            )
        )

    def start(self) -> None:
        """Start slapd in the foreground of its own process group; wait until it answers."""
        log = (self.folder / "slapd.log").open("ab")
        urls = f"{self.url}/ {self.tls_url}/"
        self.proc = subprocess.Popen(
            [SLAPD, "-d", "0", "-h", urls, "-f", str(self.folder / "slapd.conf")],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"slapd ended: {(self.folder / 'slapd.log').read_text()[-2000:]}")
            if _listening(self.port) and _listening(self.tls_port):
                return
            time.sleep(0.05)
        raise RuntimeError("slapd did not start listening")

    def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def _tool(self, tool: str, ldif: str) -> None:
        done = subprocess.run(
            [tool, "-x", "-H", self.url, "-D", ROOT_DN, "-w", ROOT_PASSWORD],
            input=ldif.encode(),
            capture_output=True,
            timeout=15,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr.decode()}")

    def add(self, ldif: str) -> None:
        self._tool("ldapadd", ldif)

    def modify(self, ldif: str) -> None:
        self._tool("ldapmodify", ldif)

    def add_user(
        self,
        uid: str,
        password: str,
        mail: str,
        *,
        cn: str | None = None,
        display_name: str | None = None,
        quota: int | None = None,
        aliases: tuple[str, ...] = (),
        enabled: bool | None = None,
    ) -> str:
        dn = f"uid={uid},{PEOPLE}"
        lines = [
            f"dn: {dn}",
            "objectClass: inetOrgPerson",
            "objectClass: mailroomUser",
            f"uid: {uid}",
            f"cn: {cn or uid}",
            f"sn: {uid}",
            f"mail: {mail}",
            f"userPassword: {password}",
        ]
        if display_name is not None:
            lines.append(f"displayName: {display_name}")
        if quota is not None:
            lines.append(f"mailQuota: {quota}")
        lines += [f"mailAlias: {alias}" for alias in aliases]
        if enabled is not None:
            lines.append(f"mailEnabled: {'TRUE' if enabled else 'FALSE'}")
        self.add("\n".join(lines) + "\n")
        return dn

    def add_group(self, cn: str, members: list[str]) -> str:
        dn = f"cn={cn},{GROUPS}"
        lines = [f"dn: {dn}", "objectClass: groupOfNames", f"cn: {cn}"]
        lines += [f"member: {member}" for member in members]
        self.add("\n".join(lines) + "\n")
        return dn

    def replace(self, dn: str, attribute: str, value: str) -> None:
        self.modify(f"dn: {dn}\nchangetype: modify\nreplace: {attribute}\n{attribute}: {value}\n")


def slapd_available() -> bool:
    return os.path.exists(SLAPD) and shutil.which("ldapadd") is not None


@contextlib.contextmanager
def running_slapd(folder: Path) -> Iterator[Slapd]:
    """A started slapd with the base entries and the service account loaded."""
    server = Slapd(folder)
    server.prepare()
    server.start()
    try:
        server.add(BASE_ENTRIES)
        yield server
    finally:
        server.stop()
