"""The baseline the benchmark compares with: a straightforward sequential `requests` + pandas script.

It fetches one day's history, expanded history and the messages of every protocol, one request at a
time, and writes three Parquet files, the way one would in a notebook. Usage:
`python benchmarks/sequential.py BASE_URL DAY TZ_OFFSET OUT_DIR` with the token in ZCHAT_API_TOKEN.
"""

import json
import os
import sys

import pandas as pd
import requests


def main(base_url: str, day: str, tz_offset: str, out: str) -> None:
    session = requests.Session()
    token = os.environ["ZCHAT_API_TOKEN"]

    def get(path: str, **params) -> list[dict]:
        response = session.get(f"{base_url}/api/ms/external/{path}", params={**params, "token": token}, timeout=60)
        response.raise_for_status()
        return response.json()["data"]

    def save(rows: list[dict], name: str) -> None:
        frame = pd.json_normalize(rows, sep="_")
        # Some fields are a string in one record and a list in another: store those as JSON text.
        for column in frame.columns[frame.dtypes == "object"]:
            frame[column] = frame[column].map(lambda v: json.dumps(v) if isinstance(v, (list, dict)) else v)
        frame.to_parquet(f"{out}/{name}.parquet")

    window = {"from": f"{day} 00:00:00", "to": f"{day} 23:59:59", "timezone": tz_offset}
    expanded = []
    for name, path in (("history", "history"), ("history_expanded", "history/expanded")):
        rows, page = [], 1
        while True:
            data = get(path, **window, limit=10_000, page=page)
            rows += data
            if len(data) < 10_000:
                break
            page += 1
        save(rows, name)
        expanded = rows
    messages = []
    for record in expanded:
        for message in get(f"history/{record['id']}/messages"):
            messages.append({"protocol_id": str(record["id"]), **message, "raw_json": json.dumps(message)})
    save(messages, "messages")


if __name__ == "__main__":
    main(*sys.argv[1:5])
