"""Reports' service functions, in one place for the API, the report downloads, the CLI, the
seeds and the tests: `from divide_support.reports import service as reports`. The rules live
beside it, one module a job:

- survey_storage.py: survey baselines imported, loaded from the seeds, listed, their metrics
- participation.py: the participation report by age band (its definitions are there)
- activity.py: the national programme's activity report, per month and venue
- topics.py: what each age band asked for against what it attended, per course topic
- suppression.py: small-cell suppression (no count of 1-4 for planners)
- _common.py: what the reports share: the period, the age rule in SQL, counted facts

Beside them: surveys.py reads survey documents, cellkey.py perturbs counts (cell key method),
render.py writes CSV and SVG, http.py serves the downloads. The modules never import this one.
"""

from __future__ import annotations

from divide_support.reports._common import MAX_PERIOD_DAYS, ReportFilter
from divide_support.reports.activity import (
    ACTIVITY_FIELDS,
    ACTIVITY_PERTURBED,
    ACTIVITY_SQL,
    ActivityRow,
    activity_report,
    suppress_activity,
)
from divide_support.reports.participation import (
    COUNT_FIELDS,
    DISTRICT_MAX,
    INDEX_PLACES,
    MAX_DISTRICTS,
    REPORT_SQL,
    SHARE_PLACES,
    UNKNOWN_LABEL,
    Report,
    Row,
    participation_report,
    suppress_small_cells,
)
from divide_support.reports.suppression import SUPPRESS_BELOW, suppress_columns
from divide_support.reports.survey_storage import (
    SEED_FOLDER,
    import_survey,
    import_survey_file,
    load_seed_surveys,
    metric_keys,
    metric_labels,
    metric_need,
    read_survey,
    save_survey,
    seed_documents,
    surveys_query,
)
from divide_support.reports.topics import TOPIC_FIELDS, TOPIC_FOR_WISH, TOPIC_SQL, TopicRow, topic_report

__all__ = [
    "ACTIVITY_FIELDS", "ACTIVITY_PERTURBED", "ACTIVITY_SQL", "COUNT_FIELDS", "DISTRICT_MAX",
    "INDEX_PLACES", "MAX_DISTRICTS", "MAX_PERIOD_DAYS", "REPORT_SQL", "SEED_FOLDER",
    "SHARE_PLACES", "SUPPRESS_BELOW", "TOPIC_FIELDS", "TOPIC_FOR_WISH", "TOPIC_SQL",
    "UNKNOWN_LABEL", "ActivityRow", "Report", "ReportFilter", "Row", "TopicRow",
    "activity_report", "import_survey", "import_survey_file", "load_seed_surveys",
    "metric_keys", "metric_labels", "metric_need", "participation_report", "read_survey",
    "save_survey", "seed_documents", "suppress_activity", "suppress_columns",
    "suppress_small_cells", "surveys_query", "topic_report",
]
