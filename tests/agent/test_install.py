"""The device's model directory: resumable staging, verified installs, rollback, crashes."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from ofa_fleet.agent.install import ModelDirectory
from ofa_fleet.agent.state import InstalledModel
from ofa_fleet.agent.trust import TrustedKeys
from ofa_fleet.contract.manifest import Manifest
from ofa_fleet.delivery.signing import ModelSigner
from ofa_fleet.errors import FailedPreconditionError, IntegrityError, InvalidArgumentError

CRASH_CHILD = Path(__file__).with_name("crash_child.py")


@dataclass(frozen=True)
class Model:
    """Model bytes as delivery would ship them: manifest and signature included."""

    data: bytes
    manifest: Manifest
    signature: bytes

    @property
    def sha256(self) -> str:
        return self.manifest.sha256


@pytest.fixture(scope="module")
def signer(tmp_path_factory: pytest.TempPathFactory) -> ModelSigner:
    return ModelSigner.load_or_create(tmp_path_factory.mktemp("key") / "signing.pem")


@pytest.fixture
def make_model(signer: ModelSigner):
    def make(seed: int, size: int = 200_000, *, data: bytes | None = None, revision: int = 1):
        if data is None:
            data = hashlib.shake_256(seed.to_bytes(4, "big")).digest(size)
        manifest = Manifest(
            sha256=hashlib.sha256(data).hexdigest(),
            size_bytes=len(data),
            profile_name="raspberry-pi-4",
            profile_revision=revision,
            supernet_version="0123456789abcdef",
            arch="r32_k3e3-k3e3_k3e3-k3e3_k3e3-k3e3_k3e3-k3e3",
            created_us=seed,
            figures={"latency_ms": 1.5},
        )
        return Model(data, manifest, signer.sign(manifest))

    return make


def _download(directory: ModelDirectory, model: Model, chunk: int = 65_536) -> None:
    offset = directory.partial_size(model.sha256)
    while offset < len(model.data):
        offset = directory.append(model.sha256, offset, model.data[offset : offset + chunk])


def _install(directory: ModelDirectory, model: Model, signer: ModelSigner) -> InstalledModel:
    _download(directory, model)
    return directory.install(model.manifest, model.signature, TrustedKeys.of(signer.public_key_pem))


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


# Staging and resume.


def test_a_resumed_download_continues_where_it_stopped(tmp_path: Path, make_model) -> None:
    model = make_model(1)
    directory = ModelDirectory(tmp_path)
    assert directory.partial_size(model.sha256) == 0
    assert directory.append(model.sha256, 0, model.data[:70_000]) == 70_000
    # The agent restarts: the partial and its size survive, and the stream resumes there.
    directory = ModelDirectory(tmp_path)
    assert directory.partial_size(model.sha256) == 70_000
    assert directory.append(model.sha256, 70_000, model.data[70_000:]) == len(model.data)
    assert (tmp_path / "downloads" / f"{model.sha256}.part").read_bytes() == model.data


@pytest.mark.parametrize("offset", [0, 999, 1001, -1])
def test_an_offset_other_than_the_partial_size_is_refused(
    tmp_path: Path, make_model, offset: int
) -> None:
    model = make_model(1)
    directory = ModelDirectory(tmp_path)
    directory.append(model.sha256, 0, model.data[:1000])
    with pytest.raises(InvalidArgumentError, match=f"offset {offset} .*next offset must be 1000"):
        directory.append(model.sha256, offset, model.data[offset : offset + 10])
    assert directory.partial_size(model.sha256) == 1000


@pytest.mark.parametrize("sha256", ["../../etc/passwd", "AB" * 32, "ab" * 31, ""])
def test_a_sha256_that_is_not_64_lowercase_hex_digits_is_refused(
    tmp_path: Path, sha256: str
) -> None:
    directory = ModelDirectory(tmp_path)
    with pytest.raises(InvalidArgumentError, match="is not a sha256 digest"):
        directory.append(sha256, 0, b"x")
    assert _files(tmp_path) == set()


def test_discard_starts_the_download_again(tmp_path: Path, make_model) -> None:
    model = make_model(1)
    directory = ModelDirectory(tmp_path)
    directory.append(model.sha256, 0, model.data[:500])
    directory.discard(model.sha256)
    directory.discard(model.sha256)  # discarding nothing is fine
    assert directory.partial_size(model.sha256) == 0


# Installing.


def test_install_verifies_and_makes_the_model_current(
    tmp_path: Path, make_model, signer: ModelSigner
) -> None:
    model = make_model(1)
    directory = ModelDirectory(tmp_path)
    assert directory.installed() is None
    installed = _install(directory, model, signer)
    assert installed == directory.installed() == ModelDirectory(tmp_path).installed()
    assert installed.manifest == model.manifest
    assert installed.signature == model.signature
    assert installed.path == tmp_path / "models" / f"{model.sha256}.onnx"
    assert installed.path.read_bytes() == model.data
    installed.verify(TrustedKeys.of(signer.public_key_pem))
    assert directory.partial_size(model.sha256) == 0
    assert _files(tmp_path) == {"current.json", f"models/{model.sha256}.onnx"}


def test_an_incomplete_download_is_kept_to_be_resumed(
    tmp_path: Path, make_model, signer: ModelSigner
) -> None:
    model = make_model(1)
    directory = ModelDirectory(tmp_path)
    directory.append(model.sha256, 0, model.data[:1000])
    with pytest.raises(FailedPreconditionError, match=r"1000 of 200000 bytes; resume .* 1000"):
        directory.install(model.manifest, model.signature, TrustedKeys.of(signer.public_key_pem))
    assert directory.partial_size(model.sha256) == 1000
    assert _install(directory, model, signer).manifest == model.manifest


def test_a_model_never_downloaded_cannot_be_installed(
    tmp_path: Path, make_model, signer: ModelSigner
) -> None:
    model = make_model(1)
    with pytest.raises(FailedPreconditionError, match="has not been downloaded"):
        ModelDirectory(tmp_path).install(
            model.manifest, model.signature, TrustedKeys.of(signer.public_key_pem)
        )


@pytest.mark.parametrize("damage", ["flipped byte", "extra bytes"])
def test_a_corrupt_download_is_refused_and_discarded(
    tmp_path: Path, make_model, signer: ModelSigner, damage: str
) -> None:
    old, new = make_model(1), make_model(2)
    directory = ModelDirectory(tmp_path)
    _install(directory, old, signer)
    data = bytearray(new.data)
    if damage == "flipped byte":
        data[123_456] ^= 0x01
    else:
        data += b"\0"
    directory.append(new.sha256, 0, bytes(data))
    with pytest.raises(IntegrityError, match=new.sha256):
        directory.install(new.manifest, new.signature, TrustedKeys.of(signer.public_key_pem))
    assert directory.partial_size(new.sha256) == 0  # never resumed from
    assert directory.installed().manifest == old.manifest
    directory.installed().verify(TrustedKeys.of(signer.public_key_pem))


def test_a_bad_signature_is_refused_and_the_download_discarded(
    tmp_path: Path, make_model, signer: ModelSigner
) -> None:
    old, new = make_model(1), make_model(2)
    other_key = ModelSigner.load_or_create(tmp_path / "other.pem")
    directory = ModelDirectory(tmp_path / "state")
    _install(directory, old, signer)
    for signature, key in [
        (bytes([new.signature[0] ^ 1]) + new.signature[1:], signer.public_key_pem),
        (new.signature, other_key.public_key_pem),
        (other_key.sign(new.manifest), signer.public_key_pem),
    ]:
        _download(directory, new)
        with pytest.raises(IntegrityError, match="signature does not verify"):
            directory.install(new.manifest, signature, TrustedKeys.of(key))
        assert directory.partial_size(new.sha256) == 0
        assert directory.installed().manifest == old.manifest
    assert _files(tmp_path / "state") == {"current.json", f"models/{old.sha256}.onnx"}


def test_the_previous_model_is_kept_and_older_ones_deleted(
    tmp_path: Path, make_model, signer: ModelSigner
) -> None:
    first, second, third = make_model(1), make_model(2), make_model(3)
    directory = ModelDirectory(tmp_path)
    _install(directory, first, signer)
    assert directory.previous() is None
    _install(directory, second, signer)
    assert directory.previous().manifest == first.manifest
    _install(directory, third, signer)
    assert directory.installed().manifest == third.manifest
    assert directory.previous().manifest == second.manifest
    assert _files(tmp_path) == {
        "current.json",
        f"models/{second.sha256}.onnx",
        f"models/{third.sha256}.onnx",
    }


def test_rollback_returns_to_the_previous_model_once(
    tmp_path: Path, make_model, signer: ModelSigner
) -> None:
    first, second = make_model(1), make_model(2)
    directory = ModelDirectory(tmp_path)
    assert directory.rollback() is None
    _install(directory, first, signer)
    assert directory.rollback() is None
    assert directory.installed().manifest == first.manifest
    _install(directory, second, signer)
    restored = directory.rollback()
    assert restored == directory.installed()
    assert restored.manifest == first.manifest
    restored.verify(TrustedKeys.of(signer.public_key_pem))
    assert directory.previous() is None
    assert directory.rollback() is None
    assert _files(tmp_path) == {"current.json", f"models/{first.sha256}.onnx"}


def test_rollback_to_a_damaged_model_changes_nothing(
    tmp_path: Path, make_model, signer: ModelSigner
) -> None:
    first, second = make_model(1), make_model(2)
    directory = ModelDirectory(tmp_path)
    _install(directory, first, signer)
    _install(directory, second, signer)
    path = directory.previous().path
    path.write_bytes(b"rot" + path.read_bytes()[3:])
    with pytest.raises(IntegrityError, match=f"sha256 .* but the manifest says {first.sha256}"):
        directory.rollback()
    assert directory.installed().manifest == second.manifest
    path.unlink()
    with pytest.raises(IntegrityError, match="missing its file"):
        directory.rollback()
    assert directory.installed().manifest == second.manifest


def test_the_same_bytes_with_a_newer_manifest_keep_the_older_previous(
    tmp_path: Path, make_model, signer: ModelSigner
) -> None:
    first, second = make_model(1), make_model(2)
    second_again = make_model(3, data=second.data, revision=2)
    directory = ModelDirectory(tmp_path)
    _install(directory, first, signer)
    _install(directory, second, signer)
    _install(directory, second_again, signer)
    assert directory.installed().manifest == second_again.manifest
    assert directory.previous().manifest == first.manifest
    directory.installed().verify(TrustedKeys.of(signer.public_key_pem))


def test_a_model_still_on_disk_is_installed_again_without_a_download(
    tmp_path: Path, make_model, signer: ModelSigner
) -> None:
    first, second = make_model(1), make_model(2)
    directory = ModelDirectory(tmp_path)
    _install(directory, first, signer)
    _install(directory, second, signer)
    again = directory.install(
        first.manifest, first.signature, TrustedKeys.of(signer.public_key_pem)
    )
    assert again == directory.installed()
    assert again.manifest == first.manifest
    assert directory.previous().manifest == second.manifest


def test_opening_removes_what_a_crash_left_and_keeps_partials(
    tmp_path: Path, make_model, signer: ModelSigner
) -> None:
    first, orphan, partial = make_model(1), make_model(2), make_model(3)
    directory = ModelDirectory(tmp_path)
    _install(directory, first, signer)
    directory.append(partial.sha256, 0, partial.data[:10])
    (tmp_path / ".current.json.x1y2.tmp").write_text("{")
    (tmp_path / "models" / f"{orphan.sha256}.onnx").write_bytes(orphan.data)
    (tmp_path / "downloads" / ".other.abc.tmp").write_bytes(b"")
    (tmp_path / ".identity.json.k3j4.tmp").write_bytes(b"not ours")
    ModelDirectory(tmp_path)
    assert _files(tmp_path) == {
        ".identity.json.k3j4.tmp",
        "current.json",
        f"models/{first.sha256}.onnx",
        f"downloads/{partial.sha256}.part",
    }


def test_a_damaged_pointer_is_reported_and_no_model_is_deleted(
    tmp_path: Path, make_model, signer: ModelSigner
) -> None:
    first = make_model(1)
    _install(ModelDirectory(tmp_path), first, signer)
    (tmp_path / "current.json").write_text('{"format": "ofa-fleet.installed/1", "current": 7}')
    directory = ModelDirectory(tmp_path)
    with pytest.raises(IntegrityError, match=f"pointer {tmp_path / 'current.json'} is damaged"):
        directory.installed()
    (tmp_path / "current.json").write_text("{")
    with pytest.raises(IntegrityError, match="is not JSON"):
        ModelDirectory(tmp_path).installed()
    assert (tmp_path / "models" / f"{first.sha256}.onnx").exists()


# Crashes: the operation is killed before each of its filesystem calls in turn.


def _run_child(state_dir: Path, operation: str, kill_at: int, model: Model, signer) -> list[str]:
    spec = {
        "state_dir": str(state_dir),
        "operation": operation,
        "kill_at": kill_at,
        "manifest": model.manifest.to_dict(),
        "signature": model.signature.hex(),
        "public_key": signer.public_key_pem.decode(),
    }
    result = subprocess.run(
        [sys.executable, str(CRASH_CHILD), json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if kill_at == 0:
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)
    assert result.returncode == -9, f"not killed before call {kill_at}: {result.stderr}"
    return []


@pytest.mark.parametrize("operation", ["install", "rollback"])
def test_a_crash_at_any_step_leaves_the_old_or_the_new_model_whole(
    tmp_path: Path, make_model, signer: ModelSigner, operation: str
) -> None:
    first, second, third = make_model(1), make_model(2), make_model(3)
    template = tmp_path / "template"
    directory = ModelDirectory(template)
    _install(directory, first, signer)
    _install(directory, second, signer)
    _download(directory, third)
    # Before: second current, first previous. After install: third, then second.
    # After rollback: first, then nothing.
    before = (second.manifest, first.manifest)
    after = (third.manifest, second.manifest) if operation == "install" else (first.manifest, None)

    complete = tmp_path / "complete"
    shutil.copytree(template, complete)
    calls = _run_child(complete, operation, 0, third, signer)
    done = ModelDirectory(complete)
    assert (done.installed().manifest, getattr(done.previous(), "manifest", None)) == after
    assert len(calls) >= 8, calls

    outcomes = []
    for kill_at in range(1, len(calls) + 1):
        case = tmp_path / f"killed-before-{kill_at}"
        shutil.copytree(template, case)
        _run_child(case, operation, kill_at, third, signer)
        step = f"killed before call {kill_at} ({calls[kill_at - 1]}) of {calls}"

        reopened = ModelDirectory(case)
        current, previous = reopened.installed(), reopened.previous()
        state = (current.manifest, getattr(previous, "manifest", None))
        assert state in (before, after), step
        for model in (current, previous):
            if model is not None:
                model.verify(TrustedKeys.of(signer.public_key_pem))
        kept = {f"models/{m.manifest.sha256}.onnx" for m in (current, previous) if m}
        partials = {p for p in _files(case) if p.startswith("downloads/")}
        assert _files(case) == {"current.json"} | kept | partials, step
        outcomes.append(state == after)

        # The directory works on: the operation, done again, completes.
        if state == before:
            if operation == "install":
                _install(reopened, third, signer)
            else:
                reopened.rollback()
        assert (reopened.installed().manifest, getattr(reopened.previous(), "manifest", None)) == (
            after
        ), step
    # The sweep crossed the switch: early kills keep the old model, late ones the new.
    assert outcomes[0] is False
    assert True in outcomes
    assert outcomes == sorted(outcomes)
