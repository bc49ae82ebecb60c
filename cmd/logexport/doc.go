// Command logexport exports the JSON log lines of a compose service as one
// clean JSON document or as NDJSON, for review or sharing. It is the Go
// version of the seed's export_docker_logs_json.py.
//
// It runs "<compose-cmd> logs --no-color --tail N SERVICE" (or, with --in,
// reads saved logs from a file or stdin), strips the compose prefix of each
// line ("app-1  | ", "app_1  | ", "bulwark-app-1  | ", for any service, since
// the logs of several services may be interleaved), also strips ANSI colour
// codes and a leading RFC 3339 timestamp (as printed by "logs --timestamps"),
// and keeps the lines whose remainder is a JSON object. Kept records are
// written compactly with their original key order; JSON objects from every
// service are kept, not only from SERVICE. Everything else (banners, plain
// text, JSON arrays and scalars, broken or truncated JSON, invalid UTF-8,
// lines over 1 MiB) is dropped and counted; blank lines are counted apart.
//
// Usage:
//
//	logexport [--compose-cmd CMD] [--service NAME] [--tail N]
//	          [--format array|ndjson] [--out FILE] [--dropped-out FILE]
//	logexport --in FILE|- [--format array|ndjson] [--out FILE] [--dropped-out FILE]
//
// Flags:
//
//	--compose-cmd CMD   compose command, split on spaces (default "docker compose")
//	--service NAME      service whose logs compose prints (default "app")
//	--tail N            lines compose prints, N >= 1 (default 200)
//	--format F          array (default) or ndjson
//	--out FILE          output file, - for stdout (default -)
//	--dropped-out FILE  dropped lines, verbatim, one per line (- for stdout
//	                    when --out is a file)
//	--in FILE|-         read saved logs instead of running compose; cannot be
//	                    combined with --compose-cmd, --service or --tail
//
// With --format array the output is
//
//	{
//	  "meta": {
//	    "source": "docker compose logs --no-color --tail 200 app",
//	    "service": "app",
//	    "tail": 200,
//	    "format": "array",
//	    "generated_at": "2025-01-02T03:04:05Z",
//	    "lines_read": 23,
//	    "parsed": 8,
//	    "dropped": 12,
//	    "blank": 3,
//	    "too_long": 0
//	  },
//	  "records": [
//	    {"time":"2024-05-01T12:00:00Z","level":"INFO","msg":"starting server"},
//	    ...
//	  ]
//	}
//
// where lines_read = parsed + dropped + blank and too_long counts the dropped
// lines longer than 1 MiB. With --in, source is the file name (or "stdin")
// and service and tail are null. With --format ndjson the output is one
// record per line and nothing else. In both formats, a successful run ends
// with one summary line on stderr, "logexport: meta {...}", holding the same
// meta as compact JSON.
//
// Input is read as a stream. In ndjson mode records are written as they are
// found; in array mode they are spooled (in memory up to 8 MiB, then in a
// temporary file) so that meta can come first. --out and --dropped-out files
// are written to a temporary file in the same directory and renamed into
// place on success, so a failed run leaves existing files untouched.
//
// Exit status is 0 on success (dropped lines are not an error), 1 when
// input, output or compose fails (compose exiting non-zero included; the one
// stderr line quotes the last line compose wrote to stderr), and 2 for bad
// flags.
//
// Examples:
//
//	logexport --compose-cmd docker-compose --service app --tail 200 \
//	    --out app-logs-200.json --dropped-out app-logs-200.dropped.txt
//	logexport --format ndjson --out app-logs-200.ndjson
//	docker compose logs --no-color app redis > saved.log
//	logexport --in saved.log --format ndjson | jq .msg
package main
