"""The device's model directory: downloads staged, verified, installed atomically.

On disk, under the state directory:

    current.json            the pointer: current and previous model (manifest + signature)
    models/<sha256>.onnx    installed model bytes, immutable, named by content
    downloads/<sha256>.part partial downloads, resumed from their size

Why a crash at any instant leaves a working model: the pointer is the only thing that
says what is installed, and it changes only by one atomic rename (`durable.write_atomic`).
Before that rename, the files the old pointer names have not been touched (the one file
created in `models/` is the new model's, and if its name is already taken the bytes under
it are the same, checked against the same sha256, replaced atomically); after it, the new
pointer names a file that was checked, fsynced and whose directory entry was fsynced
before. Files the pointer no longer names are deleted only once the new pointer is
durable. What a crash leaves behind (temporary files, an orphaned model) is removed when
the directory is next opened.

One agent process per state directory: opening one removes the temporary files that
another writer might be in the middle of using. Other files of the agent's may share the
state directory; only `current.json`, `models/` and `downloads/` belong to this module.
"""

from __future__ import annotations

from pathlib import Path

from ofa_fleet.agent.digest import check_file
from ofa_fleet.agent.downloads import Downloads
from ofa_fleet.agent.state import InstalledModel, Pointer, Record, read_pointer, write_pointer
from ofa_fleet.agent.trust import TrustedKeys
from ofa_fleet.contract.manifest import Manifest
from ofa_fleet.errors import FailedPreconditionError, IntegrityError
from ofa_fleet.storage.durable import fsync_directory, remove_temp_files

POINTER_NAME = "current.json"
MODEL_SUFFIX = ".onnx"


class ModelDirectory:
    """One device's installed models and downloads, under `state_dir`."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = Path(state_dir)
        self.models_dir = self.state_dir / "models"
        self._downloads = Downloads(self.state_dir / "downloads")
        for directory in (self.state_dir, self.models_dir, self._downloads.directory):
            directory.mkdir(parents=True, exist_ok=True)
        # The state directory may hold other files of the agent's (its identity, say).
        remove_temp_files(self.state_dir, POINTER_NAME)
        remove_temp_files(self.models_dir)
        remove_temp_files(self._downloads.directory)
        try:
            pointer = read_pointer(self._pointer_path)
        except IntegrityError:
            return  # keep every file: `installed()` reports the damage
        self._remove_unreferenced_models(pointer)

    @property
    def _pointer_path(self) -> Path:
        return self.state_dir / POINTER_NAME

    def model_path(self, sha256: str) -> Path:
        return self.models_dir / f"{sha256}{MODEL_SUFFIX}"

    def installed(self) -> InstalledModel | None:
        """The current model, or None before the first install.

        Raises `IntegrityError` when `current.json` is damaged.
        """
        return self._installed(read_pointer(self._pointer_path).current)

    def previous(self) -> InstalledModel | None:
        """The model `rollback()` would return to, if any."""
        return self._installed(read_pointer(self._pointer_path).previous)

    def partial_size(self, sha256: str) -> int:
        """Bytes of `sha256` already downloaded: the offset to resume from."""
        return self._downloads.size(sha256)

    def append(self, sha256: str, offset: int, data: bytes) -> int:
        """Add downloaded bytes at `offset` (the partial's size, else refused); new size."""
        return self._downloads.append(sha256, offset, data)

    def discard(self, sha256: str) -> None:
        """Drop the partial download of `sha256`."""
        self._downloads.discard(sha256)

    def install(self, manifest: Manifest, signature: bytes, keys: TrustedKeys) -> InstalledModel:
        """Verify the downloaded model and make it current; keep the current one as previous.

        Raises `IntegrityError` when the signature does not verify or the downloaded bytes
        do not match the manifest; the partial is then discarded, so that a corrupt
        download is never resumed. An incomplete download is `FailedPreconditionError`
        and is kept, to be resumed. With no partial, a model already in `models/` (the
        previous one, say) is checked and made current again without a download.
        """
        sha256 = manifest.sha256
        try:
            keys.verify(manifest, signature)
        except IntegrityError:
            self._downloads.discard(sha256)
            raise
        target = self.model_path(sha256)
        partial = self._downloads.path(sha256)
        if partial.exists():
            self._check_complete(manifest)
            try:
                check_file(partial, manifest, fsync=True)
            except IntegrityError:
                self._downloads.discard(sha256)
                raise
            partial.replace(target)
            fsync_directory(self.models_dir)
            fsync_directory(self._downloads.directory)
        elif target.exists():
            check_file(target, manifest)
        else:
            raise FailedPreconditionError(
                f"model {sha256} has not been downloaded: append its bytes from offset 0"
            )
        old = read_pointer(self._pointer_path)
        kept = old.current
        if kept is not None and kept.manifest.sha256 == sha256:
            kept = old.previous  # same bytes, newer manifest: keep the older model for rollback
        new = Pointer(current=Record(manifest, bytes(signature)), previous=kept)
        write_pointer(self._pointer_path, new)
        self._remove_unreferenced_models(new)
        return InstalledModel(manifest, bytes(signature), target)

    def rollback(self) -> InstalledModel | None:
        """Make the previous model current again and forget the one rolled back from.

        Returns the model now current, or None (and changes nothing) when there is no
        previous model. Raises `IntegrityError`, changing nothing, when the previous
        model's file no longer matches its manifest.
        """
        old = read_pointer(self._pointer_path)
        if old.previous is None:
            return None
        restored = InstalledModel(
            old.previous.manifest,
            old.previous.signature,
            self.model_path(old.previous.manifest.sha256),
        )
        if not restored.path.is_file():
            raise IntegrityError(f"previous model {restored.manifest.sha256} is missing its file")
        check_file(restored.path, restored.manifest)
        new = Pointer(current=old.previous)
        write_pointer(self._pointer_path, new)
        self._remove_unreferenced_models(new)
        return restored

    def _check_complete(self, manifest: Manifest) -> None:
        size = self._downloads.size(manifest.sha256)
        if size < manifest.size_bytes:
            raise FailedPreconditionError(
                f"download of model {manifest.sha256} is incomplete: {size} of "
                f"{manifest.size_bytes} bytes; resume it from offset {size}"
            )

    def _installed(self, record: Record | None) -> InstalledModel | None:
        if record is None:
            return None
        path = self.model_path(record.manifest.sha256)
        return InstalledModel(record.manifest, record.signature, path)

    def _remove_unreferenced_models(self, pointer: Pointer) -> None:
        keep = {self.model_path(sha256).name for sha256 in pointer.shas()}
        removed = False
        for path in self.models_dir.glob(f"*{MODEL_SUFFIX}"):
            if path.name not in keep:
                path.unlink(missing_ok=True)
                removed = True
        if removed:
            fsync_directory(self.models_dir)
