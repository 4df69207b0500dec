"""The product guide's key-value examples, run as its code shows them, with the
output its code prints (the guide's narration lines are not program output)."""

from __future__ import annotations

import json

import pytest

from toondb import Database


@pytest.fixture
def guide_db(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with Database.open("./my_database") as db:
        yield db
        db.check()


def test_basic_operations(guide_db, capsys):
    db = guide_db
    # Put
    db.put(b"key", b"value")

    # Get
    value = db.get(b"key")
    if value:
        print(value.decode())
    else:
        print("Key not found")

    # Delete
    db.delete(b"key")
    value = db.get(b"key")
    if value:
        print(value.decode())
    else:
        print("Key not found")
    assert capsys.readouterr().out == "value\nKey not found\n"


def test_json_data(guide_db, capsys):
    db = guide_db
    user = {"name": "Alice", "email": "alice@example.com", "age": 30}
    db.put(b"users/alice", json.dumps(user).encode())

    value = db.get(b"users/alice")
    if value:
        user = json.loads(value.decode())
        print(f"Name: {user['name']}, Age: {user['age']}")
    assert capsys.readouterr().out == "Name: Alice, Age: 30\n"


def test_path_api(guide_db, capsys):
    db = guide_db
    db.put_path("users/alice/email", b"alice@example.com")
    db.put_path("users/alice/age", b"30")
    db.put_path("users/alice/settings/theme", b"dark")

    email = db.get_path("users/alice/email")
    print(f"Alice's email: {email.decode()}")
    assert capsys.readouterr().out == "Alice's email: alice@example.com\n"


def test_prefix_scanning(guide_db, capsys):
    db = guide_db
    db.put(b"tenants/acme/users/1", b'{"name":"Alice"}')
    db.put(b"tenants/acme/users/2", b'{"name":"Bob"}')
    db.put(b"tenants/acme/orders/1", b'{"total":100}')
    db.put(b"tenants/globex/users/1", b'{"name":"Charlie"}')

    results = list(db.scan(b"tenants/acme/", b"tenants/acme;"))
    print(f"ACME Corp has {len(results)} items:")
    for key, value in results:
        print(f"  {key.decode()}: {value.decode()}")
    assert capsys.readouterr().out == (
        "ACME Corp has 3 items:\n"
        '  tenants/acme/orders/1: {"total":100}\n'
        '  tenants/acme/users/1: {"name":"Alice"}\n'
        '  tenants/acme/users/2: {"name":"Bob"}\n'
    )


def test_best_practice_tenant_scan(guide_db):
    db = guide_db
    db.put(b"tenants/acme/a", b"1")
    db.put(b"tenants/acme-old/a", b"2")
    tenant_id = "acme"
    prefix = f"tenants/{tenant_id}/".encode()
    end = f"tenants/{tenant_id};".encode()
    data = list(db.scan(prefix, end))
    assert data == [(b"tenants/acme/a", b"1")]


def test_configuration_example(tmp_path):
    db = Database.open(
        str(tmp_path / "my_db"),
        config={
            "create_if_missing": True,
            "wal_enabled": True,
            "sync_mode": "normal",  # "full", "normal", "off"
            "memtable_size_bytes": 64 * 1024 * 1024,
        },
    )
    db.put(b"key", b"value")
    assert db.get(b"key") == b"value"
    db.close()


def test_context_manager_best_practice(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with Database.open("./db") as db:
        db.put(b"key", b"value")
    db = Database.open("./db")
    db.put(b"key", b"value")
    db.close()
    with Database.open("./db") as db:
        assert db.get(b"key") == b"value"
