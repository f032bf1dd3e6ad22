"""The same day through dlt's `rest_api` source, for the benchmark's comparison row (bench.py --only dlt).

dlt is not a dependency of zchat-assets: run this with a Python that has it (`pip install 'dlt[parquet]'`),
as bench.py does with `--dlt-python`. It reads what the assets read for a day, the expanded history page by
page and each protocol's messages, with `workers` requests in flight, into Parquet files on disk, and prints
the rows it loaded as JSON.

    python benchmarks/dlt_rest_api.py BASE_URL DAY WORKERS OUT_DIR   # the token in ZCHAT_API_TOKEN
"""

import json
import os
import sys


def main() -> None:
    base_url, day, workers, out = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
    os.environ["EXTRACT__WORKERS"] = workers  # the thread pool that runs parallelized resources
    os.environ["RUNTIME__LOG_LEVEL"] = "WARNING"
    import dlt
    from dlt.sources.rest_api import rest_api_source

    source = rest_api_source({
        "client": {"base_url": f"{base_url}/api/ms/external/",
                   "auth": {"type": "api_key", "name": "token", "api_key": os.environ["ZCHAT_API_TOKEN"],
                            "location": "query"}},
        "resources": [
            {"name": "history_expanded",
             "endpoint": {"path": "history/expanded", "data_selector": "data",
                          "params": {"from": f"{day}T00:00:00", "to": f"{day}T23:59:59", "timezone": "-0300",
                                     "limit": 10000},
                          "paginator": {"type": "page_number", "base_page": 1, "page_param": "page",
                                        "total_path": None, "stop_after_empty_page": True}}},
            {"name": "messages", "parallelized": True, "include_from_parent": ["id"],
             "endpoint": {"path": "history/{resources.history_expanded.id}/messages", "data_selector": "data",
                          "paginator": "single_page"}},
        ],
    })
    pipeline = dlt.pipeline("zchat_bench", destination=dlt.destinations.filesystem(bucket_url=f"file://{out}/lake"),
                            dataset_name="zchat", pipelines_dir=f"{out}/pipelines")
    info = pipeline.run(source, loader_file_format="parquet")
    counts = pipeline.last_trace.last_normalize_info.row_counts
    print(json.dumps({"rows": {k: v for k, v in counts.items() if not k.startswith("_dlt")},
                      "failed": info.has_failed_jobs}))


if __name__ == "__main__":
    main()
