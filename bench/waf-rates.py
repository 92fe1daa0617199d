#!/usr/bin/env python3
"""Sends every line of each list as `?q=VALUE` to two gateways (keep-alive,
one connection each, in parallel) and prints a Markdown table of how many
each blocked: a status other than 200 counts as blocked.

Usage: waf-rates.py PORTCULLIS_PORT MODSECURITY_PORT LIST..."""
import http.client
import sys
import urllib.parse
from concurrent.futures import ThreadPoolExecutor


def blocked(port, values):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    count = 0
    for value in values:
        path = "/search?q=" + urllib.parse.quote(value, safe="")
        for attempt in range(2):
            try:
                connection.request("GET", path)
                response = connection.getresponse()
                response.read()
                break
            except (http.client.HTTPException, OSError):
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        count += response.status != 200
        if response.getheader("connection", "").lower() == "close":
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    return count


def main():
    ours, theirs, lists = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
    print("| list | values | portcullis blocked | ModSecurity + CRS blocked |")
    print("|---|---:|---:|---:|")
    for path in lists:
        with open(path, encoding="utf-8", errors="replace") as f:
            values = [line.rstrip("\n") for line in f if line.strip()]
        with ThreadPoolExecutor(2) as pool:
            a, b = pool.map(lambda port: blocked(port, values), [ours, theirs])
        name = "/".join(path.split("/")[-2:])
        n = len(values)
        print(f"| {name} | {n} | {a} ({100 * a / n:.1f}%) | {b} ({100 * b / n:.1f}%) |")


main()
