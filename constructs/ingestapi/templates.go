package ingestapi

import (
	"strings"

	"github.com/tributary/tributary/internal/ingest"
)

// The mapping templates, in API Gateway's Velocity (VTL). Velocity does not
// re-evaluate the value of a reference, so "$" and "#" in the data stay data.
// A literal newline inside quotes ends an event's line, so Firehose writes
// newline-delimited JSON.

// esc copies a value into a JSON string: escapeJavaScript escapes what JSON
// needs, and also ' as \', which JSON does not allow: replaceAll undoes it.
func esc(value string) string {
	return `$util.escapeJavaScript("` + value + `").replaceAll("\\'", "'")`
}

// partitionKey is the client's X-Partition-Key, else the request id.
const partitionKey = `#set($key = $input.params('` + ingest.PartitionKeyHeader + `'))
#if("$!key" == "")#set($key = $context.requestId)#end
`

// putRecordTemplate stores one posted JSON object as the client sent it,
// without its line breaks: a JSON string cannot hold a raw CR or LF, so
// removing them keeps every value exact (big integers, decimals, key order)
// and leaves one line.
var putRecordTemplate = `#set($event = $input.body.replaceAll("[\r\n]", ""))
` + partitionKey + `{
  "StreamName": "STREAM_NAME",
  "PartitionKey": "` + esc("$key") + `",
  "Data": "$util.base64Encode("$event
")"
}`

// packedTemplate stores a posted JSON array as ONE record holding one line
// per event: each event re-serialised on one line by $input.json and ended by
// a newline. The number of events goes to the response template through a
// request override (see packedSuccessTemplate).
var packedTemplate = partitionKey + `#set($lines = "")
#foreach($event in $input.path('$'))
#set($path = "$[$foreach.index]")
#set($line = $input.json($path))
#set($lines = "$lines$line
")
#end
#set($context.requestOverride.header.` + eventCountOverride + ` = "$input.path('$').size()")
{
  "StreamName": "STREAM_NAME",
  "PartitionKey": "` + esc("$key") + `",
  "Data": "$util.base64Encode($lines)"
}`

// eventCountOverride carries the number of events of a packed request from
// the request template to the response template.
const eventCountOverride = "TributaryEvents"

// perEventTemplate turns a posted JSON array into a Kinesis PutRecords
// request, one record per element. Without X-Partition-Key each record gets
// its own key (request id and index), which spreads the batch over the shards.
var perEventTemplate = `#set($key = $input.params('` + ingest.PartitionKeyHeader + `'))
{
  "StreamName": "STREAM_NAME",
  "Records": [
#foreach($event in $input.path('$'))
#set($path = "$[$foreach.index]")
#set($line = $input.json($path))
#if("$!key" == "")#set($recordKey = "${context.requestId}-${foreach.index}")#else#set($recordKey = $key)#end
    {
      "PartitionKey": "` + esc("$recordKey") + `",
      "Data": "$util.base64Encode("$line
")"
    }#if($foreach.hasNext),#end

#end
  ]
}`

// withStream puts the stream's name into a request template.
func withStream(template, streamName string) string {
	return strings.Replace(template, "STREAM_NAME", streamName, 1)
}

// Response templates. The 200 ones are selected only for a 2xx from Kinesis,
// and answer 200 only for what Kinesis confirmed with a sequence number: a
// 2xx without one (an empty or unreadable body) is an unknown outcome, 500,
// which clients resend (duplicates, removed downstream by event_id, rather
// than loss).

const unknownOutcome = `#set($context.responseOverride.status = 500)
{"message": "Kinesis answered without a sequence number: whether the events were stored is unknown; resend them (duplicates are removed by event_id)."}`

// putRecordSuccessTemplate answers /v1 with where the event was stored.
var putRecordSuccessTemplate = `#set($seq = "$!input.path('$.SequenceNumber')")
#if($seq == "")
` + unknownOutcome + `
#else
{"sequenceNumber": "` + esc("$seq") + `", "shardId": "` + esc("$!input.path('$.ShardId')") + `"}
#end`

// packedSuccessTemplate answers a packed batch: all its events are stored in
// one record, or none is. events is the count the request template passed on,
// or null where the response template cannot see it.
var packedSuccessTemplate = `#set($seq = "$!input.path('$.SequenceNumber')")
#set($events = "$!context.requestOverride.header.` + eventCountOverride + `")
#if($seq == "")
` + unknownOutcome + `
#else
{"sequenceNumber": "` + esc("$seq") + `", "shardId": "` + esc("$!input.path('$.ShardId')") + `", "events": #if($events.matches("[0-9]+"))$events#{else}null#end}
#end`

// perEventSuccessTemplate answers per record, in request order, so a client
// resends only what failed. It counts the failures itself (Kinesis's
// FailedRecordCount may be missing); a record without a sequence number is
// failed. When no record was stored the answer is not 200: 429 if Kinesis
// throttled any of them, else 500; without any record, the outcome is unknown.
var perEventSuccessTemplate = `#set($records = $input.path('$.Records'))
#set($count = 0)
#set($failed = 0)
#set($status = 500)
#foreach($r in $records)
#set($count = $count + 1)
#if("$!r.ErrorCode" != "" || "$!r.SequenceNumber" == "")#set($failed = $failed + 1)#end
#if("$!r.ErrorCode" == "ProvisionedThroughputExceededException")#set($status = 429)#end
#end
#if($count == 0)
` + unknownOutcome + `
#else
#if($failed == $count)#set($context.responseOverride.status = $status)#end
{
  #if($failed == $count)"message": "No event was stored; resend them with backoff.",
  #end"failedRecordCount": $failed,
  "records": [
#foreach($r in $records)
#if("$!r.ErrorCode" != "" || "$!r.SequenceNumber" == "")
    {"errorCode": "#if("$!r.ErrorCode" != "")` + esc("$r.ErrorCode") + `#{else}NoSequenceNumber#end", "errorMessage": "` + esc("$!r.ErrorMessage") + `"}#else
    {"sequenceNumber": "` + esc("$r.SequenceNumber") + `", "shardId": "` + esc("$!r.ShardId") + `"}#end#if($foreach.hasNext),#end

#end
  ]
}
#end`

// tooLarge is Kinesis's refusal of a record's data over the stream's record
// limit (AWS's standard constraint message, for PutRecord and PutRecords).
const tooLarge = `(?s).*data' failed to satisfy constraint: Member must have length less than or equal to.*`

// kinesisClientErrorTemplate sorts Kinesis's HTTP 400 answers by __type:
// throttling becomes 429 (retry later); a record over the size limit 413 with
// what to do (tooLargeMessage); any other request Kinesis rejects (a bad
// partition key) 400 (do not retry); anything else is the pipeline's fault:
// 500.
func kinesisClientErrorTemplate(tooLargeMessage string) string {
	return `#set($type = "$!input.path('$.__type')")
#set($message = "$!input.path('$.message')")
#if($type.contains("ProvisionedThroughputExceededException") || $type.contains("KMSThrottlingException") || $type.contains("LimitExceededException"))
#set($context.responseOverride.status = 429)
{"message": "Kinesis is throttling writes; retry with backoff."}
#elseif($type.contains("ValidationException") || $type.contains("InvalidArgumentException"))
#if($message.matches("` + tooLarge + `"))
#set($context.responseOverride.status = 413)
{"message": "` + tooLargeMessage + ` Kinesis: ` + esc("$message") + `"}
#else
{"message": "Kinesis rejected the request: ` + esc("$message") + `"}
#end
#else
#set($context.responseOverride.status = 500)
{"message": "Nothing was stored: the pipeline could not write to Kinesis."}
#end`
}

// What to do about a record over Kinesis's limit, per endpoint.
const (
	eventTooLarge   = "The event is over Kinesis's record limit of 1 MiB (data and partition key) and cannot be stored; do not resend it."
	packedTooLarge  = "The batch is stored as one record and is over Kinesis's record limit of 1 MiB: split it and send the halves."
	perEventTooLong = "An event of the batch is over Kinesis's record limit of 1 MiB: split the batch to find it; it cannot be stored."
)

// backendErrorTemplate answers any other Kinesis status: nothing was stored.
const backendErrorTemplate = `{"message": "Nothing was stored: Kinesis is unavailable; retry with backoff."}`
