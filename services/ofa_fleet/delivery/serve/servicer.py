"""`DeliveryService` over gRPC: devices fetch their model; operators inspect the store.

`GetModelManifest` answers at once, so no call is held open for a model that does not
exist yet: a device whose profile has none is told MODEL_NOT_READY with a retry delay
(and WatchModel tells it the moment there is one). `ReadModel` reads the model once per
call (from the replica's cache, shared by every call for that model: a thousand devices
downloading one model hold it once) and sends it in bounded chunks.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

from google.longrunning import operations_pb2
from grpc import aio
from prometheus_client import CollectorRegistry

from ofa_fleet.contract.error_details import MODEL_NOT_READY, PROFILE_INFEASIBLE
from ofa_fleet.contract.fields import check_sha256
from ofa_fleet.contract.resource_names import (
    parse_device_name,
    parse_fleet_name,
    parse_profile_name,
    parse_profile_parent,
)
from ofa_fleet.contract.rollout import pinned_sha256
from ofa_fleet.delivery.carbon.report import CarbonReport
from ofa_fleet.delivery.fleets.targets import TargetModels
from ofa_fleet.delivery.reconcile.metrics import DeliveryMetrics
from ofa_fleet.delivery.reconcile.reconciler import Reconciler
from ofa_fleet.delivery.serve import convert
from ofa_fleet.delivery.serve.chunking import CHUNK_BYTES
from ofa_fleet.delivery.serve.device_auth import RegistryDeviceAuthenticator
from ofa_fleet.delivery.serve.latency_measurement import measurement_for
from ofa_fleet.delivery.serve.model_urls import ModelUrls
from ofa_fleet.delivery.serve.model_watch import TargetWatch
from ofa_fleet.delivery.serve.operations import OperationsServicer
from ofa_fleet.delivery.serve.pinning import FleetPinning
from ofa_fleet.delivery.serve.revocations import Revocations
from ofa_fleet.delivery.signing import ModelSigner
from ofa_fleet.delivery.store.model_store import ModelRecord, ModelStore, ReadableModel
from ofa_fleet.delivery.store.operations import Operations
from ofa_fleet.delivery.store.specializations import Specializations, SpecializationStatus
from ofa_fleet.errors import (
    FailedPreconditionError,
    OutOfRangeError,
    UnauthenticatedError,
    UnavailableError,
)
from ofa_fleet.serving.access import Role, current_principal
from ofa_fleet.serving.timestamps import timestamp
from ofa_fleet.v1 import common_pb2, delivery_pb2, delivery_pb2_grpc

RETRY_HINT_SECONDS = 5
FAILING_RETRY_SECONDS = 60


class DeliveryServicer(delivery_pb2_grpc.DeliveryServiceServicer):
    def __init__(
        self,
        store: ModelStore,
        signer: ModelSigner,
        devices: RegistryDeviceAuthenticator,
        targets: TargetModels,
        ledger: Specializations,
        watch: TargetWatch,
        reconciler: Reconciler | None = None,
        chunk_bytes: int = CHUNK_BYTES,
        metrics: DeliveryMetrics | None = None,
        carbon: CarbonReport | None = None,
        revocations: Revocations | None = None,
        model_urls: ModelUrls | None = None,
    ) -> None:
        self.revocations = revocations
        self.model_urls = model_urls or ModelUrls()
        self.carbon = carbon
        self.metrics = metrics or DeliveryMetrics(CollectorRegistry())
        self.watch = watch
        self.ledger = ledger
        self.reconciler = reconciler
        self.store = store
        self.signer = signer
        self.devices = devices
        self.targets = targets
        self.chunk_bytes = chunk_bytes
        self.pinning = FleetPinning(store, targets.fleets, watch.notify)
        # google.longrunning.Operations, served beside this service: Respecialize's.
        self.operations = OperationsServicer(
            Operations(store.database), ledger, store, self.manifest
        )

    async def GetModelManifest(  # noqa: N802
        self, request: delivery_pb2.GetModelManifestRequest, context: aio.ServicerContext
    ) -> delivery_pb2.GetModelManifestResponse:
        check_sha256(request.have_sha256, "have_sha256", required=False)
        device = parse_device_name(current_principal().subject)
        fleet = device.fleet
        record = (await self.targets.for_fleet(fleet)).for_device(device.device)
        if record is None:
            raise await self._not_ready(fleet)
        if request.have_sha256 == record.sha256:
            self.metrics.up_to_date(record.profile_name)
            return delivery_pb2.GetModelManifestResponse(
                up_to_date=delivery_pb2.UpToDate(sha256=record.sha256)
            )
        return delivery_pb2.GetModelManifestResponse(manifest=self.manifest(record))

    async def ReadModel(  # noqa: N802
        self, request: delivery_pb2.ReadModelRequest, context: aio.ServicerContext
    ) -> AsyncIterator[delivery_pb2.ReadModelResponse]:
        check_sha256(request.sha256, "sha256", required=True)
        model = self.store.readable_in_memory(request.sha256)
        if model is None:
            model = await asyncio.to_thread(self.store.readable, request.sha256)
        size, offset = model.size_bytes, request.read_offset
        if offset > size:
            raise OutOfRangeError(
                f"read_offset {offset} is past the end of model {model.sha256} "
                f"({size} bytes); resume from an offset between 0 and {size}"
            )
        end = size if request.read_limit == 0 else min(size, offset + request.read_limit)
        principal = current_principal()
        # The bytes are the same whoever reads them; the figures count the reader's profile.
        profile = model.first_profile
        if principal.role is Role.DEVICE:
            fleet = parse_device_name(principal.subject).fleet
            profile = (await self.targets.fleets.fleet(fleet)).profile
        if self.revocations is None or principal.role is not Role.DEVICE:
            for chunk in self._chunks(model, profile, offset, end):
                yield chunk
            return
        # Chunks come without waiting, so a look at the flag before each is enough (and
        # cheaper on this hot path than racing every chunk against it, as WatchModel must).
        with self.revocations.streaming(principal.subject) as revoked:
            for chunk in self._chunks(model, profile, offset, end):
                if revoked.is_set():
                    raise UnauthenticatedError("this device was deleted; its access ended")
                yield chunk

    def _chunks(
        self, model: ReadableModel, profile: str, offset: int, end: int
    ) -> Iterator[delivery_pb2.ReadModelResponse]:
        size = model.size_bytes
        view = memoryview(model.data)
        starts = range(offset, end, self.chunk_bytes)
        if not starts and end == size:  # a resume that already had every byte
            self.metrics.served(profile)
        for start in starts:
            data = bytes(view[start : min(end, start + self.chunk_bytes)])
            # Counted before the chunk leaves: a device that has every byte may end the
            # call at once, and this generator would then not run past its last yield.
            self.metrics.sent(profile, len(data))
            if start + len(data) == size:
                self.metrics.served(profile)
            yield delivery_pb2.ReadModelResponse(
                chunk=common_pb2.ModelChunk(offset=start, data=data)
            )

    async def WatchModel(  # noqa: N802
        self, request: delivery_pb2.WatchModelRequest, context: aio.ServicerContext
    ) -> AsyncIterator[delivery_pb2.WatchModelResponse]:
        name = current_principal().subject
        device = parse_device_name(name)
        records = self.watch.follow(device.fleet, device.device)
        if self.revocations is not None:
            records = self.revocations.until_revoked(name, records)
        async for record in records:
            yield delivery_pb2.WatchModelResponse(manifest=self.manifest(record))

    async def GetSigningKey(  # noqa: N802
        self, request: delivery_pb2.GetSigningKeyRequest, context: aio.ServicerContext
    ) -> delivery_pb2.GetSigningKeyResponse:
        return delivery_pb2.GetSigningKeyResponse(
            public_key_pem=self.signer.public_key_pem,
            key_id=self.signer.key_id,
            endorsements=[
                delivery_pb2.KeyEndorsement(signer_key_id=e.signer_key_id, signature=e.signature)
                for e in self.signer.endorsements
            ],
        )

    async def GetLatencyMeasurement(  # noqa: N802
        self, request: delivery_pb2.GetLatencyMeasurementRequest, context: aio.ServicerContext
    ) -> delivery_pb2.GetLatencyMeasurementResponse:
        if self.reconciler is None:
            raise FailedPreconditionError(
                "this delivery server follows no search service (start it with --search), "
                "so it knows no search space to measure"
            )
        supernet = self.reconciler.supernet.answer
        if supernet is None:
            raise UnavailableError(
                "delivery has not heard from search yet; retry later",
                retry_after_seconds=RETRY_HINT_SECONDS,
            )
        named = parse_device_name(current_principal().subject)
        fleet = await self.targets.fleets.fleet(named.fleet)
        profile = await self.targets.fleets.registry.get_profile(fleet.profile)
        return delivery_pb2.GetLatencyMeasurementResponse(
            measurement=measurement_for(profile, supernet)
        )

    async def ListModels(  # noqa: N802
        self, request: delivery_pb2.ListModelsRequest, context: aio.ServicerContext
    ) -> delivery_pb2.ListModelsResponse:
        page = await asyncio.to_thread(
            self.store.list_models,
            parse_profile_parent(request.parent),
            request.page_size,
            request.page_token,
        )
        running = await self.targets.fleets_by_model()
        return delivery_pb2.ListModelsResponse(
            models=[
                delivery_pb2.StoredModel(
                    manifest=self.manifest(r),
                    current_for_fleets=sorted(running.get((r.profile_name, r.sha256), [])),
                )
                for r in page.items
            ],
            next_page_token=page.next_token,
        )

    async def GetProfileModels(  # noqa: N802
        self, request: delivery_pb2.GetProfileModelsRequest, context: aio.ServicerContext
    ) -> delivery_pb2.GetProfileModelsResponse:
        profile = parse_profile_name(request.name)
        current = await asyncio.to_thread(self.store.current, profile)
        page = await asyncio.to_thread(
            self.store.history_page,
            profile,
            request.history_page_size,
            request.history_page_token,
        )
        history = page.items
        state = await asyncio.to_thread(self.ledger.get, profile)
        rollouts = await asyncio.to_thread(self.targets.rollouts.for_profile, profile)
        if state is None and current is None and not history:
            # Nothing here: a profile the reconciler has yet to see, or none at all.
            await self.targets.fleets.profile_exists(profile)
        answer = delivery_pb2.GetProfileModelsResponse(
            profile_name=profile,
            history=[convert.history_entry_to_proto(entry) for entry in history],
            # A model stored without the reconciler (no state) is current all the same.
            state=convert.state_to_proto(
                state.state
                if state
                else SpecializationStatus.CURRENT
                if current
                else SpecializationStatus.PENDING
            ),
            rollouts=[convert.rollout_to_proto(r) for r in rollouts],
            next_history_page_token=page.next_token,
        )
        if state is not None:
            answer.last_error = state.last_error
            answer.attempts = state.attempts
            if state.state is SpecializationStatus.CURRENT:
                answer.state_profile_revision = state.profile_revision
            elif state.state is SpecializationStatus.INFEASIBLE:
                answer.state_profile_revision = state.failed_revision
            answer.over_budget_sha256 = state.over_budget_sha256
            answer.over_budget_latency_ms = state.over_budget_latency_ms
            answer.over_budget_reports = state.over_budget_reports
            if state.next_attempt_us:
                answer.next_attempt_time.CopyFrom(timestamp(state.next_attempt_us))
        if current is not None:
            answer.current.CopyFrom(self.manifest(current))
        return answer

    async def PinFleet(  # noqa: N802
        self, request: delivery_pb2.PinFleetRequest, context: aio.ServicerContext
    ) -> delivery_pb2.PinFleetResponse:
        expected = (
            request.expected_fleet_revision if request.HasField("expected_fleet_revision") else None
        )
        fleet = await self.pinning.pin(
            parse_fleet_name(request.fleet, "fleet"), request.sha256, request.rollback, expected
        )
        return delivery_pb2.PinFleetResponse(
            sha256=pinned_sha256(fleet.rollout), fleet_revision=fleet.revision
        )

    async def Respecialize(  # noqa: N802
        self, request: delivery_pb2.RespecializeRequest, context: aio.ServicerContext
    ) -> operations_pb2.Operation:
        profile = parse_profile_name(request.name)
        if self.reconciler is None:
            raise FailedPreconditionError(
                "this delivery server runs no reconciler (start it with --search)"
            )
        await self.targets.fleets.profile_exists(profile)  # else NOT_FOUND
        record = await asyncio.to_thread(self.operations.operations.start, profile)
        self.reconciler.operation_started(record)
        return await self.operations.answer(record)

    async def GetCarbonLedger(  # noqa: N802
        self, request: delivery_pb2.GetCarbonLedgerRequest, context: aio.ServicerContext
    ) -> delivery_pb2.GetCarbonLedgerResponse:
        if self.carbon is None:
            raise FailedPreconditionError("this delivery server keeps no carbon ledger")
        fleet = parse_fleet_name(request.fleet, "fleet") if request.fleet else ""
        return await self.carbon.answer(fleet, request.page_size, request.page_token)

    def manifest(self, record: ModelRecord) -> delivery_pb2.ModelManifest:
        urls = self.model_urls.for_model(record.sha256)
        return convert.manifest_to_proto(record, self.signer.key_id, self.chunk_bytes, urls)

    async def _not_ready(self, fleet: str) -> UnavailableError | FailedPreconditionError:
        """MODEL_NOT_READY, saying why: being specialized, or failing (with the reason, and
        a longer wait, since a failing profile waits out its backoff or a change). Where no
        subnet fits the profile, FAILED_PRECONDITION PROFILE_INFEASIBLE: asking again is
        no use until an operator changes the profile (or the supernet)."""
        profile = (await self.targets.fleets.fleet(fleet)).profile
        state = await asyncio.to_thread(self.ledger.get, profile)
        facts = {"fleet": fleet, "profile": profile}
        if state is not None and state.state is SpecializationStatus.INFEASIBLE:
            facts["last_error"] = state.last_error[:200]
            facts["profile_revision"] = str(state.failed_revision)
            return FailedPreconditionError(
                f"fleet {fleet!r} has no model: no subnet fits profile {profile!r} "
                f"(revision {state.failed_revision}): {state.last_error}; change the "
                "profile (ofa-fleet profiles update) and its devices get a model",
                reason=PROFILE_INFEASIBLE,
                facts=facts,
            )
        if state is not None and state.state is SpecializationStatus.FAILING:
            facts["last_error"] = state.last_error[:200]
            return UnavailableError(
                f"fleet {fleet!r} has no model: specializing profile {profile!r} fails "
                f"({state.last_error}); retry in {FAILING_RETRY_SECONDS} s, or watch "
                "(WatchModel) to hear when the profile gets a model",
                reason=MODEL_NOT_READY,
                facts=facts,
                retry_after_seconds=FAILING_RETRY_SECONDS,
            )
        return UnavailableError(
            f"fleet {fleet!r} has no model yet: its profile {profile!r} is being specialized; "
            f"retry in {RETRY_HINT_SECONDS} s, or watch (WatchModel) to hear of it",
            reason=MODEL_NOT_READY,
            facts=facts,
            retry_after_seconds=RETRY_HINT_SECONDS,
        )
