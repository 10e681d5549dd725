"""SOPs: definitions and versions, enrolment and the touches it schedules,
nurture audiences, the lifecycle of an enrolment (early end, end actions,
flows, replies, conversions) and stats.  Builds on ``customers``."""
