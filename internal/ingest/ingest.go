// Package ingest is the contract of the Tributary ingest API, shared by the
// construct that deploys it (constructs/ingestapi), the programs that call it
// (cmd/producer, cmd/smoke) and its local fake (internal/fakeapi): paths,
// limits, headers, and how callers authenticate. It is plain Go, so the
// producer can import it without the CDK.
package ingest

import (
	"fmt"
	"strings"
)

// Paths of the two methods, below the stage.
const (
	EventPath = "/v1"       // POST one JSON object
	BatchPath = "/v1/batch" // POST a JSON array of 1 to MaxBatch (or MaxPackedBatch) objects
)

// MaxBatch is the most events one batch request may carry wherever something
// downstream counts records: Kinesis PutRecords takes at most 500 records
// (PerEvent), and Firehose de-aggregates at most 500 records of one packed
// record (partitioning by event time, Parquet).
const MaxBatch = 500

// MaxPackedBatch is the most events a packed batch may carry when nothing
// downstream splits the record (JSON by arrival time): the batch template's
// #foreach stops after 1,000 iterations ("Quotas for configuring and running
// a REST API" in the API Gateway developer guide), so the request model
// refuses more rather than let events past the 1,000th be dropped. The
// record's 1 MiB bounds the batch's bytes.
const MaxPackedBatch = 1000

// Headers a client may send.
const (
	// PartitionKeyHeader chooses the Kinesis partition key (1 to 256
	// characters), to keep related events in order on one shard.
	PartitionKeyHeader = "X-Partition-Key"
	// APIKeyHeader carries the usage plan's key with AuthAPIKey.
	APIKeyHeader = "x-api-key"
)

// Auth is how producers authenticate to the API: the setting apiAuth, and
// the -auth flag of both commands in lower case (Flag).
type Auth string

// Authorization modes.
const (
	// AuthIAM requires SigV4 signatures (service execute-api) from principals
	// allowed execute-api:Invoke.
	AuthIAM Auth = "IAM"
	// AuthAPIKey requires APIKeyHeader with a key of the API's usage plan.
	AuthAPIKey Auth = "API_KEY"
	// AuthNone lets anyone who knows the URL write events.
	AuthNone Auth = "NONE"
)

// Auths lists every mode, the default first.
var Auths = []Auth{AuthIAM, AuthAPIKey, AuthNone}

// Flag is the mode as the commands' -auth flag spells it: iam, api-key, none.
func (a Auth) Flag() string { return strings.ReplaceAll(strings.ToLower(string(a)), "_", "-") }

// AuthFlags lists the -auth values, for help texts and messages.
func AuthFlags() []string {
	out := make([]string, len(Auths))
	for i, a := range Auths {
		out[i] = a.Flag()
	}
	return out
}

// ParseAuthFlag reads an -auth value.
func ParseAuthFlag(s string) (Auth, error) {
	for _, a := range Auths {
		if a.Flag() == s {
			return a, nil
		}
	}
	return "", fmt.Errorf("-auth must be one of %s, got %q", strings.Join(AuthFlags(), ", "), s)
}

// Packing is how the batch endpoint stores a batch: the setting recordPacking.
type Packing string

// Packings.
const (
	// Packed stores a batch as one Kinesis record holding one line per event:
	// one record, one Firehose billing unit, for up to MaxPackedBatch events.
	Packed Packing = "PACKED"
	// PerEvent stores each event of a batch as a record of its own, and
	// answers per record.
	PerEvent Packing = "PER_EVENT"
)

// Packings lists the modes, the default first.
var Packings = []Packing{Packed, PerEvent}

// MaxRecordBytes is the most a Kinesis record holds (the stream's default
// limit): its data and its partition key together.
const MaxRecordBytes = 1 << 20
