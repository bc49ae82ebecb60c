package main

import (
	"context"
	"io"
	"os"
	"strings"
)

// Saved compose logs of two services, exported as NDJSON. The meta summary
// goes to stderr (discarded here).
func Example() {
	logs := `Attaching to app-1, redis-1
redis-1  | 1:M * Ready to accept connections tcp
app-1  | {"level":"INFO","msg":"listening","addr":":8080"}
app-1  | plain text is dropped
app-1  | {"level":"WARN", "msg":"slow request", "ms":1234}
`
	run(context.Background(), []string{"--in", "-", "--format", "ndjson"},
		strings.NewReader(logs), os.Stdout, io.Discard)
	// Output:
	// {"level":"INFO","msg":"listening","addr":":8080"}
	// {"level":"WARN","msg":"slow request","ms":1234}
}
