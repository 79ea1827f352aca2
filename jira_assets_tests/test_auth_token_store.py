"""Token stores: private, atomic, locked (file); compare-and-swap with a lease (S3 on moto)."""
from __future__ import annotations

import os
import stat
import threading
import time

import boto3
import pytest

from jira_assets.jira import (
    ConfigError,
    FileTokenStore,
    S3TokenStore,
    TokenSet,
    TokenStoreConflict,
    token_store_from_url,
)

CANARY_ACCESS = "canary-access-4f1c9e"
CANARY_REFRESH = "canary-refresh-77ad02"


def tokens(n: int = 1) -> TokenSet:
    return TokenSet(
        access_token=f"{CANARY_ACCESS}-{n}",
        refresh_token=f"{CANARY_REFRESH}-{n}",
        expires_at=2_000_000_000.0,
        scope="read:jira-work offline_access",
        obtained_at=1_999_996_400.0,
        refresh_token_issued_at=1_999_996_400.0,
        grant_started_at=1_990_000_000.0,
    )


def test_a_token_set_never_shows_its_secrets():
    text = repr(tokens()) + str(tokens()) + f"{tokens()}"
    assert CANARY_ACCESS not in text and CANARY_REFRESH not in text
    assert "read:jira-work" in text


def test_a_short_lived_token_is_fresh_for_half_its_life_despite_a_long_margin():
    two_seconds = TokenSet("a", "r", expires_at=102.0, obtained_at=100.0)
    assert two_seconds.is_fresh(100.5, margin=300)
    assert not two_seconds.is_fresh(101.2, margin=300)


def test_the_token_file_is_private_and_round_trips(tmp_path):
    store = FileTokenStore(tmp_path / "nested" / "tokens.json")
    assert store.read() is None
    store.write(tokens())
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert store.read() == tokens()


def test_a_write_replaces_the_file_atomically_and_leaves_no_temp_files(tmp_path):
    store = FileTokenStore(tmp_path / "tokens.json")
    store.write(tokens(1))
    inode_before = os.stat(store.path).st_ino
    store.write(tokens(2))
    assert os.stat(store.path).st_ino != inode_before  # a new file renamed over the old one, never rewritten
    assert store.read() == tokens(2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tokens.json"]


def test_a_corrupt_token_file_is_a_config_error_without_its_content(tmp_path):
    path = tmp_path / "tokens.json"
    path.write_text('{"access_token": "' + CANARY_ACCESS)
    with pytest.raises(ConfigError) as info:
        FileTokenStore(path).read()
    assert CANARY_ACCESS not in str(info.value)


@pytest.mark.parametrize("content, named", [
    ("[]", "an array"), ("null", "a JSON object, found null"), ('"hello"', "a string"),
    ('{"access_token": "%s", "refresh_token": "r", "expires_at": "soon"}' % CANARY_ACCESS,
     "expires_at is a string"),
    ('{"access_token": "a", "refresh_token": 12345, "expires_at": 1}', "refresh_token is a number"),
    ('{"refresh_token": "%s", "expires_at": 1}' % CANARY_REFRESH, "no access_token"),
])
def test_a_token_file_of_the_wrong_types_names_the_field_never_the_value(tmp_path, content, named):
    path = tmp_path / "tokens.json"
    path.write_text(content)
    with pytest.raises(ConfigError) as info:
        FileTokenStore(path).read()
    message = str(info.value)
    assert named in message and "tokens.json" in message and "auth login" in message
    assert CANARY_ACCESS not in message and CANARY_REFRESH not in message


def test_a_token_store_behind_a_symlink_updates_the_file_it_names_and_locks_beside_it(tmp_path):
    target = tmp_path / "shared" / "tokens.json"
    target.parent.mkdir()
    FileTokenStore(target).write(tokens(1))
    link = tmp_path / "tokens-link.json"
    link.symlink_to(target)
    through_link = FileTokenStore(link)
    through_link.write(tokens(2))
    assert link.is_symlink() and FileTokenStore(target).read() == tokens(2)
    with through_link.lock(timeout=5):
        assert (target.parent / "tokens.json.lock").exists()
        assert not (tmp_path / "tokens-link.json.lock").exists()


def test_the_file_lock_excludes_a_second_holder(tmp_path):
    first, second = FileTokenStore(tmp_path / "t.json"), FileTokenStore(tmp_path / "t.json")
    events: list[str] = []
    with first.lock():
        thread = threading.Thread(target=lambda: _hold(second, events))
        thread.start()
        time.sleep(0.2)
        events.append("first releases")
    thread.join(5)
    assert events == ["first releases", "second holds"]


def _hold(store, events):
    with store.lock():
        events.append("second holds")


@pytest.mark.parametrize(
    "url, kind",
    [("/tmp/x/tokens.json", FileTokenStore), ("file:///tmp/x/tokens.json", FileTokenStore),
     ("s3://bucket/jira/tokens.json", S3TokenStore)],
)
def test_token_store_urls(url, kind, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    assert isinstance(token_store_from_url(url), kind)


@pytest.mark.parametrize("url", ["s3://bucket", "ftp://host/tokens.json"])
def test_bad_token_store_urls_are_config_errors(url):
    with pytest.raises(ConfigError, match="token store"):
        token_store_from_url(url)


# ---- S3 ----------------------------------------------------------------------------------------------------


def s3_store(s3_server, bucket, **kwargs) -> S3TokenStore:
    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    return S3TokenStore(bucket, "jira/tokens.json", client, **kwargs)


def test_s3_store_round_trips(s3_server, s3_bucket):
    store = s3_store(s3_server, s3_bucket)
    assert store.read() is None
    store.write(tokens(1))
    assert s3_store(s3_server, s3_bucket).read() == tokens(1)


def test_s3_write_is_compare_and_swap_against_the_version_read(s3_server, s3_bucket):
    first, second = s3_store(s3_server, s3_bucket), s3_store(s3_server, s3_bucket)
    first.read(), second.read()
    first.write(tokens(2))
    with pytest.raises(TokenStoreConflict) as info:
        second.write(tokens(3))  # its view is stale: it must not overwrite the newer refresh token
    assert CANARY_REFRESH not in str(info.value)
    assert first.read() == tokens(2)
    second.read()
    second.write(tokens(3))  # after re-reading it may write
    assert first.read() == tokens(3)


def test_s3_create_only_if_absent(s3_server, s3_bucket):
    first, second = s3_store(s3_server, s3_bucket), s3_store(s3_server, s3_bucket)
    first.read(), second.read()
    first.write(tokens(1))
    with pytest.raises(TokenStoreConflict):
        second.write(tokens(2))


def test_s3_lease_excludes_a_second_holder_until_released(s3_server, s3_bucket):
    first, second = s3_store(s3_server, s3_bucket), s3_store(s3_server, s3_bucket)
    events: list[str] = []
    with first.lock():
        thread = threading.Thread(target=lambda: _hold(second, events))
        thread.start()
        time.sleep(0.4)
        events.append("first releases")
    thread.join(10)
    assert events == ["first releases", "second holds"]


def test_an_expired_s3_lease_of_a_dead_holder_is_taken_over(s3_server, s3_bucket):
    dead = s3_store(s3_server, s3_bucket, lease_seconds=-1)  # its lease is expired the moment it is written
    dead.lock().__enter__()  # entered and never left: the holder died
    started = time.monotonic()
    with s3_store(s3_server, s3_bucket, lock_timeout=5).lock():
        pass
    assert time.monotonic() - started < 2
