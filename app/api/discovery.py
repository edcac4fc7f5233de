"""Discovery: what a caller can run, without reading the project's source."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from app.api.deps import RunServiceDep
from app.api.problems import problem_responses

router = APIRouter(tags=["discovery"])


class PipelineSummaryOut(BaseModel):
    name: str
    node_count: int
    tags: list[str]
    namespaces: list[str]


class PipelineNodeOut(BaseModel):
    name: str
    function: str = Field(description="The node's function, as module.qualname.")
    inputs: list[str]
    outputs: list[str]
    tags: list[str]
    namespace: str | None


class PipelineOut(BaseModel):
    name: str
    nodes: list[PipelineNodeOut] = Field(description="In execution order.")
    inputs: list[str] = Field(description="Free inputs: datasets no node of it produces.")
    outputs: list[str] = Field(description="Free outputs: datasets no node of it consumes.")
    parameters: dict[str, Any] = Field(
        description="Parameter keys its nodes read, with the project's default values."
    )


class DatasetOut(BaseModel):
    name: str
    type: str | None
    versioned: bool
    filepath: str | None = Field(description="Where it lives, credentials redacted.")


@router.get(
    "/pipelines",
    operation_id="listPipelines",
    summary="List the registered pipelines",
    response_model=list[PipelineSummaryOut],
)
async def list_pipelines(service: RunServiceDep) -> list[PipelineSummaryOut]:
    return [
        PipelineSummaryOut(
            name=p.name, node_count=p.node_count, tags=p.tags, namespaces=p.namespaces
        )
        for p in await service.list_pipelines()
    ]


@router.get(
    "/pipelines/{name}",
    operation_id="getPipeline",
    summary="Describe one pipeline",
    response_model=PipelineOut,
    responses=problem_responses(404, 422),
)
async def get_pipeline(
    name: Annotated[str, Path(max_length=255, description="A registered pipeline name.")],
    service: RunServiceDep,
) -> PipelineOut:
    pipeline = await service.get_pipeline(name)
    return PipelineOut(
        name=pipeline.name,
        nodes=[
            PipelineNodeOut(
                name=n.name,
                function=n.function,
                inputs=n.inputs,
                outputs=n.outputs,
                tags=n.tags,
                namespace=n.namespace,
            )
            for n in pipeline.nodes
        ],
        inputs=pipeline.inputs,
        outputs=pipeline.outputs,
        parameters=pipeline.parameters,
    )


@router.get(
    "/datasets",
    operation_id="listDatasets",
    summary="List the catalog's datasets",
    response_model=list[DatasetOut],
)
async def list_datasets(service: RunServiceDep) -> list[DatasetOut]:
    return [
        DatasetOut(name=d.name, type=d.type, versioned=d.versioned, filepath=d.filepath)
        for d in await service.list_datasets()
    ]
