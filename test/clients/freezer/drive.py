"""Drives python-freezerclient (library and CLI), unchanged, against keyward.

Run by run.sh with KEYWARD_URL and KEYWARD_ADMIN_KEY set. The admin key is
used only to mint personal access tokens over the Spatio API; every Freezer
call is made by the client itself, authenticated the way it always is: a
Keystone token check at OS_AUTH_URL (keyward's /freezer/identity/v3), then
X-Auth-Token on each call.
"""

import json
import os
import subprocess
import sys
import urllib.request

from keystoneauth1 import session as ksa_session
from keystoneauth1 import token_endpoint

from freezerclient import exceptions
from freezerclient.v1 import client as freezer_client

BASE = os.environ["KEYWARD_URL"]
ADMIN_KEY = os.environ["KEYWARD_ADMIN_KEY"]
WORK = sys.argv[1]
AUTH_URL = BASE + "/freezer/identity/v3"
ENDPOINT = BASE + "/freezer"

results = []


def check(name, fn):
    """Runs one call; an exception or a false result is a failure."""
    try:
        detail = fn()
        ok = detail is not False
    except Exception as err:  # the line says what went wrong
        ok, detail = False, "%s: %s" % (type(err).__name__, err)
    results.append(ok)
    print("%s %s%s" % ("PASS" if ok else "FAIL", name, "" if detail in (None, True, False) else " (%s)" % detail))


def expect(cond, what):
    if not cond:
        raise AssertionError(what)


def mint_pat(user, scopes):
    req = urllib.request.Request(
        BASE + "/spatio/v1/tokens", method="POST",
        data=json.dumps({"name": "freezer-ci", "scopes": scopes}).encode(),
        headers={"Authorization": "Bearer " + ADMIN_KEY, "X-User-ID": user, "Content-Type": "application/json"})
    with urllib.request.urlopen(req) as resp:
        return json.load(resp)["token"]


def client_ids(entries):
    return [e["client"]["client_id"] for e in entries]


def doc(client_id, description):
    return {"client_id": client_id, "hostname": client_id.split("_")[-1] + ".example.org",
            "description": description, "supported_actions": ["backup", "restore"]}


alice = mint_pat("alice", ["keyward:clients"])
bob = mint_pat("bob", ["keyward:clients"])
no_scope = mint_pat("alice", ["keyward:tokens"])

# --- the library -----------------------------------------------------------
# The documented configuration: token + auth_url (keyward answers the
# Keystone check), endpoint from the catalogue keyward returns.
lib = freezer_client.Client(token=alice, auth_url=AUTH_URL)
# Without any Keystone at all: a keystoneauth session over a static token and endpoint.
static = freezer_client.Client(session=ksa_session.Session(auth=token_endpoint.Token(ENDPOINT, alice)), endpoint=ENDPOINT)
lib_bob = freezer_client.Client(token=bob, auth_url=AUTH_URL, endpoint=ENDPOINT)


def registered_twice():
    try:
        lib.clients.create(doc("proj_lib1", "nightly"))
    except exceptions.ApiClientException as err:
        expect(err.status_code == 409 and "already registered" in str(err), "want 409 already registered, got %s" % err)
        return "409"
    raise AssertionError("the second registration succeeded")


def delete_missing():
    try:
        lib.clients.delete("proj_lib1")
    except exceptions.ApiClientException as err:
        expect(err.status_code == 404 and "No Client found" in str(err), "want 404, got %s" % err)
        return "404"
    raise AssertionError("deleting a missing client succeeded")


def refused_without_scope():
    c = freezer_client.Client(token=no_scope, auth_url=AUTH_URL, endpoint=ENDPOINT)
    try:
        c.clients.list()
    except exceptions.ApiClientException as err:
        expect(err.status_code == 403, "want 403, got %s" % err)
        return "403"
    raise AssertionError("a PAT without keyward:clients listed clients")


def admin_key_refused():
    try:  # the client checks the token with Keystone as it is built
        freezer_client.Client(token=ADMIN_KEY, auth_url=AUTH_URL, endpoint=ENDPOINT).clients.list()
    except Exception as err:  # keystoneauth's Unauthorized from the token check
        expect("X-User-ID" in str(err), "want the X-User-ID explanation, got %s" % err)
        return "401 at the token check"
    raise AssertionError("the admin key listed clients without X-User-ID")


check("library clients.create", lambda: expect(lib.clients.create(doc("proj_lib1", "nightly")) == "proj_lib1", "client_id"))
check("library clients.create (second client)", lambda: expect(lib.clients.create(doc("proj_lib2", "weekly")) == "proj_lib2", "client_id"))
check("library clients.create again -> 409", registered_twice)
check("library clients.list", lambda: expect(client_ids(lib.clients.list()) == ["proj_lib1", "proj_lib2"], "both clients"))
check("library clients.list limit=1 offset=1", lambda: expect(client_ids(lib.clients.list(limit=1, offset=1)) == ["proj_lib2"], "the second page"))
check("library clients.list search", lambda: expect(client_ids(lib.clients.list(search={"match": [{"description": "weekly"}]})) == ["proj_lib2"], "the match"))
check("library clients.get", lambda: expect(lib.clients.get("proj_lib1")["client"]["hostname"] == "lib1.example.org" and lib.clients.get("proj_lib1")["user_id"] == "alice", "the client, alice's"))
check("library clients.get missing -> None (404)", lambda: expect(lib.clients.get("proj_nothere") is None, "None"))
check("library without Keystone (static token session) clients.list", lambda: expect(client_ids(static.clients.list()) == ["proj_lib1", "proj_lib2"], "both clients"))
check("library another user's PAT sees none of them", lambda: expect(client_ids(lib_bob.clients.list()) == [] and lib_bob.clients.get("proj_lib1") is None, "nothing"))
check("library a PAT without keyward:clients -> 403", refused_without_scope)
check("library the admin key without X-User-ID -> refused", admin_key_refused)
check("library clients.delete", lambda: lib.clients.delete("proj_lib1"))
check("library clients.delete missing -> 404", delete_missing)
check("library clients.delete (second client)", lambda: lib.clients.delete("proj_lib2"))

# --- the CLI ---------------------------------------------------------------
cli_env = dict(os.environ, OS_BACKUP_API_VERSION="1", OS_AUTH_URL=AUTH_URL, OS_TOKEN=alice)
for var in ("OS_USERNAME", "OS_PASSWORD", "OS_BACKUP_URL", "OS_PROJECT_ID", "OS_PROJECT_NAME"):
    cli_env.pop(var, None)


def cli(*args, want_rc=0):
    p = subprocess.run(["freezer", *args], env=cli_env, capture_output=True, text=True, timeout=120)
    expect(p.returncode == want_rc if want_rc == 0 else p.returncode != 0,
           "exit %d, want %s: %s%s" % (p.returncode, "0" if want_rc == 0 else "non-zero", p.stdout, p.stderr))
    return p.stdout + p.stderr


def cli_json(*args):
    """Runs a listing or show command with cliff's JSON output."""
    p = subprocess.run(["freezer", *args, "-f", "json"], env=cli_env, capture_output=True, text=True, timeout=120)
    expect(p.returncode == 0, "exit %d: %s" % (p.returncode, p.stderr))
    return json.loads(p.stdout)


def write_doc(name, d):
    path = os.path.join(WORK, name)
    with open(path, "w") as f:
        json.dump(d, f)
    return path


one = write_doc("cli1.json", doc("proj_cli1", "nightly"))
two = write_doc("cli2.json", doc("proj_cli2", "weekly"))


def listed(*args):
    return [row["Client ID"] for row in cli_json("client-list", *args)]


check("cli client-register --file", lambda: expect("proj_cli1 registered" in cli("client-register", "--file", one), "registered"))
check("cli client-register --file (second client)", lambda: expect("proj_cli2 registered" in cli("client-register", "--file", two), "registered"))
check("cli client-register again -> 409 (non-zero exit)", lambda: expect("409" in cli("--debug", "client-register", "--file", one, want_rc=1), "a 409 answer"))
check("cli client-list", lambda: expect(listed() == ["proj_cli1", "proj_cli2"], "both clients"))
check("cli client-list --limit 1 --offset 1", lambda: expect(listed("--limit", "1", "--offset", "1") == ["proj_cli2"], "the second page"))
check("cli client-list --search", lambda: expect(listed("--search", "weekly") == ["proj_cli2"], "the match"))
check("cli client-show", lambda: expect(cli_json("client-show", "proj_cli1")["hostname"] == "cli1.example.org", "the client"))
check("cli client-show missing -> 404 (non-zero exit)", lambda: expect("Client not found" in cli("client-show", "proj_nothere", want_rc=1), "Client not found"))
check("cli client-delete", lambda: expect("proj_cli1 deleted" in cli("client-delete", "proj_cli1"), "deleted"))
check("cli client-delete missing -> 404 (non-zero exit)", lambda: expect("404" in cli("client-delete", "proj_cli1", want_rc=1), "404"))
check("cli client-list after delete", lambda: expect(listed() == ["proj_cli2"], "one left"))
check("cli --os-backup-url client-delete", lambda: expect("proj_cli2 deleted" in cli("--os-backup-url", ENDPOINT, "client-delete", "proj_cli2"), "deleted"))

passed, failed = results.count(True), results.count(False)
print("freezer client: %d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
