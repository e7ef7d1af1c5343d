from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class Survey(Model):
    """A municipality's own survey: the baseline reports compare participation against."""

    id = fields.IntField(primary_key=True)
    municipality = fields.ForeignKeyField(
        "divide_support.Municipality", related_name="surveys", on_delete=fields.RESTRICT,
        db_index=True,
    )
    key = fields.CharField(max_length=100, description="Stable name, e.g. hiratsuka-2020-internet-use")
    title = fields.CharField(max_length=200)
    year = fields.IntField()
    field_from = fields.DateField(null=True)
    field_to = fields.DateField(null=True)
    source = fields.TextField(null=True)
    sample_size = fields.IntField(null=True)
    # [{"key": "internet_use", "exhaustive": true, "metrics": [{"key": "using", "need": "complement"}]}]
    metric_groups = fields.JSONField(default=list)
    # sha256 of the document as loaded: loading the same document again changes nothing.
    fingerprint = fields.CharField(max_length=64)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "survey"
        unique_together = (("municipality_id", "key"),)


class SurveyBand(Model):
    id = fields.IntField(primary_key=True)
    survey = fields.ForeignKeyField("divide_support.Survey", related_name="bands",
                                    on_delete=fields.CASCADE, db_index=True)
    position = fields.IntField()
    label = fields.CharField(max_length=50)
    min_age = fields.IntField()
    max_age = fields.IntField(null=True, description="null: open-ended (e.g. 80歳以上)")
    respondents = fields.IntField(null=True)

    class Meta:
        table = "survey_band"
        unique_together = (("survey_id", "position"),)


class SurveyValue(Model):
    """One percentage of one band, e.g. internet_use.using = 50.4 for 70～79歳."""

    id = fields.IntField(primary_key=True)
    band = fields.ForeignKeyField("divide_support.SurveyBand", related_name="values",
                                  on_delete=fields.CASCADE, db_index=True)
    metric = fields.CharField(max_length=100)
    percent = fields.FloatField()

    class Meta:
        table = "survey_value"
        unique_together = (("band_id", "metric"),)


class PopulationFigure(Model):
    """Residents of an age range on a date (resident register); weights need by population."""

    id = fields.IntField(primary_key=True)
    municipality = fields.ForeignKeyField(
        "divide_support.Municipality", related_name="population_figures",
        on_delete=fields.RESTRICT, db_index=True,
    )
    as_of = fields.DateField()
    min_age = fields.IntField()
    max_age = fields.IntField(null=True)
    population = fields.IntField()

    class Meta:
        table = "population_figure"
        unique_together = (("municipality_id", "as_of", "min_age"),)
