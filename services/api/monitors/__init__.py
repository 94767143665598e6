"""`/v1/monitors` and `/v1/renewals`: SOP 05's website monitoring and service renewals."""
