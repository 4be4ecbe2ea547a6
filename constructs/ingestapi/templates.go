package ingestapi

import (
	"strings"

	"github.com/tributary/tributary/internal/ingest"
)

// Request templates. $input.json() re-serialises JSON on one line, so a
// pretty-printed event still becomes one line; the literal newline inside the
// quotes ends that line so Firehose writes newline-delimited JSON. Velocity
// does not re-evaluate the value of a reference, so "$" and "#" in the data
// stay data. escapeJavaScript escapes ' as \', which JSON does not allow:
// replaceAll undoes it.

// putRecordTemplate turns one posted JSON object into a Kinesis PutRecord request.
const putRecordTemplate = `#set($event = $input.json('$'))
#set($key = $input.params('` + ingest.PartitionKeyHeader + `'))
#if("$!key" == "")#set($key = $context.requestId)#end
{
  "StreamName": "STREAM_NAME",
  "PartitionKey": "$util.escapeJavaScript($key).replaceAll("\\'", "'")",
  "Data": "$util.base64Encode("$event
")"
}`

// putRecordsTemplate turns a posted JSON array into a Kinesis PutRecords
// request, one record per element. Without X-Partition-Key each record gets
// its own key (request id and index), which spreads the batch over the shards.
const putRecordsTemplate = `#set($key = $input.params('` + ingest.PartitionKeyHeader + `'))
{
  "StreamName": "STREAM_NAME",
  "Records": [
#foreach($event in $input.path('$'))
#set($path = "$[$foreach.index]")
#set($line = $input.json($path))
#if("$!key" == "")#set($recordKey = "${context.requestId}-${foreach.index}")#else#set($recordKey = $key)#end
    {
      "PartitionKey": "$util.escapeJavaScript($recordKey).replaceAll("\\'", "'")",
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
// that is once Kinesis has answered for the records.

const putRecordSuccessTemplate = `{"sequenceNumber": "$input.path('$.SequenceNumber')", "shardId": "$input.path('$.ShardId')"}`

// putRecordsSuccessTemplate answers per record, in request order, so a client
// resends only what failed. When no record was stored the answer is not 200:
// 429 if Kinesis throttled any of them, else 500.
const putRecordsSuccessTemplate = `#set($records = $input.path('$.Records'))
#set($failed = $input.path('$.FailedRecordCount'))
#if($failed > 0 && $failed == $records.size())
#set($status = 500)
#foreach($r in $records)#if("$!r.ErrorCode" == "ProvisionedThroughputExceededException")#set($status = 429)#end#end
#set($context.responseOverride.status = $status)
#end
{
  #if($failed > 0 && $failed == $records.size())"message": "No event was stored; resend them with backoff.",
  #end"failedRecordCount": $failed,
  "records": [
#foreach($r in $records)
#if("$!r.ErrorCode" != "")
    {"errorCode": "$r.ErrorCode", "errorMessage": "$util.escapeJavaScript($r.ErrorMessage).replaceAll("\\'", "'")"}#else
    {"sequenceNumber": "$r.SequenceNumber", "shardId": "$r.ShardId"}#end#if($foreach.hasNext),#end

#end
  ]
}`

// kinesisClientErrorTemplate sorts Kinesis's HTTP 400 answers by __type:
// throttling becomes 429 (retry later), a request Kinesis rejects (a record
// too large, a bad partition key) stays 400 (do not retry), and anything else
// is the pipeline's fault: 500.
const kinesisClientErrorTemplate = `#set($type = "$!input.path('$.__type')")
#set($message = "$!input.path('$.message')")
#if($type.contains("ProvisionedThroughputExceededException") || $type.contains("KMSThrottlingException") || $type.contains("LimitExceededException"))
#set($context.responseOverride.status = 429)
{"message": "Kinesis is throttling writes; retry with backoff."}
#elseif($type.contains("ValidationException") || $type.contains("InvalidArgumentException"))
{"message": "Kinesis rejected the request: $util.escapeJavaScript($message).replaceAll("\\'", "'")"}
#else
#set($context.responseOverride.status = 500)
{"message": "Nothing was stored: the pipeline could not write to Kinesis."}
#end`

// backendErrorTemplate answers any other Kinesis status: nothing was stored.
const backendErrorTemplate = `{"message": "Nothing was stored: Kinesis is unavailable; retry with backoff."}`
