"""Search's protobuf messages to its plain values and back; nothing else."""

from __future__ import annotations

from collections.abc import Iterator

from ofa_fleet.carbon.convert import cost_to_proto
from ofa_fleet.contract.search_words import latency_source_to_proto, stop_reason_to_proto
from ofa_fleet.core.arch import ArchConfig
from ofa_fleet.search.candidates import Candidate
from ofa_fleet.search.specializer import Event, Specialization, SpecializeOptions
from ofa_fleet.v1 import common_pb2, search_pb2

CHUNK_BYTES = 1024 * 1024

_STAGES = {
    "search": search_pb2.SEARCH_STAGE_EVOLUTION,
    "rerank": search_pb2.SEARCH_STAGE_RERANK,
    "export": search_pb2.SEARCH_STAGE_EXPORT,
}


def options_from_proto(message: search_pb2.SearchOptions) -> SpecializeOptions:
    """Zero fields take the defaults; the ranges are checked by `SpecializeOptions`."""
    defaults = SpecializeOptions()
    return SpecializeOptions(
        seed=message.seed,
        population=message.population or defaults.population,
        generations=message.max_generations or defaults.generations,
        patience=message.patience or defaults.patience,
        top_k=message.rerank_top_k or defaults.top_k,
        measure_latency=message.measure_latency,
        use_cache=not message.skip_cache,
    )


def options_to_proto(options: SpecializeOptions) -> search_pb2.SearchOptions:
    return search_pb2.SearchOptions(
        seed=options.seed,
        population=options.population,
        max_generations=options.generations,
        patience=options.patience,
        rerank_top_k=options.top_k,
        measure_latency=options.measure_latency,
        skip_cache=not options.use_cache,
    )


def arch_to_proto(arch: ArchConfig) -> common_pb2.ArchConfig:
    return common_pb2.ArchConfig(
        resolution=arch.resolution,
        stages=[
            common_pb2.StageConfig(
                blocks=[
                    common_pb2.BlockConfig(kernel_size=b.kernel, expand_ratio=b.expand)
                    for b in stage
                ]
            )
            for stage in arch.stages
        ],
    )


def figures_to_proto(candidate: Candidate) -> search_pb2.SubnetFigures:
    return search_pb2.SubnetFigures(
        arch=str(candidate.arch),
        top1=candidate.top1,
        latency_ms=candidate.latency_ms,
        model_bytes=candidate.model_bytes,
        peak_memory_bytes=candidate.peak_memory_bytes,
        macs=candidate.macs,
    )


def progress_to_proto(event: Event, operation_name: str = "") -> search_pb2.SpecializeResponse:
    progress = search_pb2.SearchProgress(
        stage=_STAGES[event.stage],
        generation=event.generation,
        max_generations=event.generations,
        candidates_evaluated=event.evaluated,
        operation_name=operation_name,
    )
    if event.best is not None:
        progress.best.CopyFrom(figures_to_proto(event.best))
    return search_pb2.SpecializeResponse(progress=progress)


def result_to_proto(
    result: Specialization, operation_name: str = ""
) -> search_pb2.SpecializeResponse:
    stats = result.statistics
    measured = search_pb2.MeasuredFigures(
        top1=result.measured_top1,
        model_bytes=len(result.onnx_bytes),
        max_abs_diff=result.max_abs_diff,
    )
    if result.measured_latency_ms is not None:
        measured.latency_ms = result.measured_latency_ms
    message = search_pb2.SpecializeResult(
        profile_name=result.profile_name,
        supernet_version=result.supernet_version,
        arch=arch_to_proto(result.arch),
        arch_string=str(result.arch),
        predicted=figures_to_proto(result.predicted),
        latency_source=latency_source_to_proto(result.latency_source),
        measured=measured,
        pareto_front=[figures_to_proto(c) for c in result.front],
        reranked=[
            search_pb2.RerankedCandidate(
                predicted=figures_to_proto(r.candidate), measured_top1=r.measured_top1
            )
            for r in result.reranked
        ],
        statistics=search_pb2.SearchStatistics(
            generations=stats["generations"],
            candidates_evaluated=stats["candidates_evaluated"],
            feasible_candidates=stats["feasible_candidates"],
            stop_reason=stop_reason_to_proto(stats["stop_reason"]),
            search_seconds=stats["search_seconds"],
            rerank_seconds=stats["rerank_seconds"],
            export_seconds=stats["export_seconds"],
            total_seconds=stats["total_seconds"],
            workers=stats["workers"],
            from_cache=result.from_cache,
        ),
        model_size=len(result.onnx_bytes),
        model_sha256=result.sha256,
        cost=cost_to_proto(result.cost),
        operation_name=operation_name,
    )
    return search_pb2.SpecializeResponse(result=message)


def model_chunks(
    onnx_bytes: bytes, chunk_bytes: int = CHUNK_BYTES
) -> Iterator[search_pb2.SpecializeResponse]:
    for offset in range(0, len(onnx_bytes), chunk_bytes):
        yield search_pb2.SpecializeResponse(
            chunk=common_pb2.ModelChunk(
                offset=offset, data=onnx_bytes[offset : offset + chunk_bytes]
            )
        )
