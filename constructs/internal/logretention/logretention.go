// Package logretention maps a number of days to the retention values
// CloudWatch Logs accepts, so every log group the app creates expires.
package logretention

import (
	"fmt"
	"sort"

	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"

	"github.com/tributary/tributary/constructs/internal/check"
)

// Default keeps a month of logs: enough to investigate an incident, cheap to store.
const Default = 30

var byDays = map[int]awslogs.RetentionDays{
	1: awslogs.RetentionDays_ONE_DAY, 3: awslogs.RetentionDays_THREE_DAYS, 5: awslogs.RetentionDays_FIVE_DAYS,
	7: awslogs.RetentionDays_ONE_WEEK, 14: awslogs.RetentionDays_TWO_WEEKS, 30: awslogs.RetentionDays_ONE_MONTH,
	60: awslogs.RetentionDays_TWO_MONTHS, 90: awslogs.RetentionDays_THREE_MONTHS, 120: awslogs.RetentionDays_FOUR_MONTHS,
	150: awslogs.RetentionDays_FIVE_MONTHS, 180: awslogs.RetentionDays_SIX_MONTHS, 365: awslogs.RetentionDays_ONE_YEAR,
	400: awslogs.RetentionDays_THIRTEEN_MONTHS, 545: awslogs.RetentionDays_EIGHTEEN_MONTHS, 731: awslogs.RetentionDays_TWO_YEARS,
	1096: awslogs.RetentionDays_THREE_YEARS, 1827: awslogs.RetentionDays_FIVE_YEARS, 2192: awslogs.RetentionDays_SIX_YEARS,
	2557: awslogs.RetentionDays_SEVEN_YEARS, 2922: awslogs.RetentionDays_EIGHT_YEARS, 3288: awslogs.RetentionDays_NINE_YEARS,
	3653: awslogs.RetentionDays_TEN_YEARS,
}

// Setting is the configuration name the value comes from.
const Setting = "logRetentionDays"

// Retention is a number of days CloudWatch Logs supports, as a number (for
// S3 expiry) and as the value log groups take.
type Retention struct {
	Days int
	Logs awslogs.RetentionDays
}

// OrDefault resolves what every construct's LogRetentionDays prop means:
// days, or Default when nil.
func OrDefault(days *int) (Retention, error) {
	d := Default
	if days != nil {
		d = *days
	}
	logs, err := Of(d)
	return Retention{Days: d, Logs: logs}, err
}

// Allowed lists the days CloudWatch Logs supports, in order.
func Allowed() []int {
	allowed := make([]int, 0, len(byDays))
	for d := range byDays {
		allowed = append(allowed, d)
	}
	sort.Ints(allowed)
	return allowed
}

// Of returns the retention for days, or a check error listing the allowed values.
func Of(days int) (awslogs.RetentionDays, error) {
	if r, ok := byDays[days]; ok {
		return r, nil
	}
	return "", check.Invalid(Setting, days, fmt.Sprintf("one of %v (days CloudWatch Logs supports)", Allowed()))
}
