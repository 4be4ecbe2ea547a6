package ingestapi

import "strings"

// putRecordTemplate turns one posted JSON object into a Kinesis PutRecord
// request. $input.json('$') re-serialises the body on one line, so a
// pretty-printed event still becomes one line; the literal newline inside the
// quotes ends that line so Firehose writes newline-delimited JSON. Velocity
// does not re-evaluate the value of $event, so "$" and "#" in the data stay
// data. escapeJavaScript escapes ' as \', which JSON does not allow: undo it.
const putRecordTemplate = `#set($event = $input.json('$'))
#set($key = $input.params('X-Partition-Key'))
#if("$!key" == "")#set($key = $context.requestId)#end
{
  "StreamName": "STREAM_NAME",
  "PartitionKey": "$util.escapeJavaScript($key).replaceAll("\\'", "'")",
  "Data": "$util.base64Encode("$event
")"
}`

// PutRecordTemplate returns the request template for the named stream.
func PutRecordTemplate(streamName string) string {
	return strings.Replace(putRecordTemplate, "STREAM_NAME", streamName, 1)
}

// putRecordSuccessTemplate answers 200 only for a 2xx from Kinesis, that is
// once the record is stored.
const putRecordSuccessTemplate = `{"sequenceNumber": "$input.path('$.SequenceNumber')", "shardId": "$input.path('$.ShardId')"}`

// kinesisClientErrorTemplate sorts Kinesis's HTTP 400 answers by __type:
// throttling becomes 429 (retry later), a record Kinesis rejects (too large,
// bad partition key) stays 400 (do not retry), and anything else is our
// fault: 500.
const kinesisClientErrorTemplate = `#set($type = "$!input.path('$.__type')")
#set($message = "$!input.path('$.message')")
#if($type.contains("ProvisionedThroughputExceededException") || $type.contains("KMSThrottlingException") || $type.contains("LimitExceededException"))
#set($context.responseOverride.status = 429)
{"message": "Kinesis is throttling writes; retry with backoff."}
#elseif($type.contains("ValidationException") || $type.contains("InvalidArgumentException"))
{"message": "Kinesis rejected the event: $util.escapeJavaScript($message).replaceAll("\\'", "'")"}
#else
#set($context.responseOverride.status = 500)
{"message": "The event was not stored: the pipeline could not write to Kinesis."}
#end`

// backendErrorTemplate answers any other Kinesis status: the event was not stored.
const backendErrorTemplate = `{"message": "The event was not stored: Kinesis is unavailable; retry with backoff."}`
