"""The turnover report: one offline HTML page and its charts, built by ``reports.build.build_report``."""

import time
from pathlib import Path

import dagster as dg

from orchestration.defs.resources import WAREHOUSE_POOL, StockturnPaths

GROUP = "reports"
REPORT_KEY = dg.AssetKey(["reports", "turnover_report"])


def build_report_asset(deps: list[dg.AssetKey]) -> dg.AssetsDefinition:
    @dg.asset(key=REPORT_KEY, deps=deps, group_name=GROUP, kinds={"html", "altair"}, pool=WAREHOUSE_POOL,
              description="Inventory turnover report: an offline HTML page with charts, in the report folder.")
    def turnover_report(context: dg.AssetExecutionContext, paths: StockturnPaths) -> dg.MaterializeResult:
        from reports.build import build_report  # imported here: Altair and vl-convert load only for this step

        t0 = time.perf_counter()
        out_dir = paths.report_path
        out_dir.mkdir(parents=True, exist_ok=True)
        result = build_report(paths.warehouse_path, out_dir)
        seconds = time.perf_counter() - t0
        html_path = Path(result.html_path)
        context.log.info("report written to %s in %.1f s", html_path, seconds)
        metadata: dict[str, object] = {
            "html_path": dg.MetadataValue.path(str(html_path)),
            "url": dg.MetadataValue.url(html_path.resolve().as_uri()),
            "seconds": round(seconds, 2),
            "preview": dg.MetadataValue.md(result.preview_markdown or ""),
        }
        if getattr(result, "html_bytes", None) is not None:
            metadata["html_bytes"] = int(result.html_bytes)
        if getattr(result, "as_of_date", None) is not None:
            metadata["as_of_date"] = result.as_of_date.isoformat()
        charts = getattr(result, "chart_files", None) or {}
        if charts:
            metadata["charts"] = len(charts)
        sections = getattr(result, "sections", None) or []
        if sections:
            metadata["sections"] = dg.MetadataValue.md(
                "| section | status | detail |\n|---|---|---|\n"
                + "\n".join(f"| {s.title} | {s.status} | {s.detail} |" for s in sections)
            )
            metadata["sections_not_ok"] = sum(1 for s in sections if s.status != "ok")
        for name, value in (getattr(result, "kpis", None) or {}).items():
            if isinstance(value, int | float):
                metadata[f"kpi/{name}"] = float(value)
        return dg.MaterializeResult(metadata=metadata)

    return turnover_report
