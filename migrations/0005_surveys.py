"""Survey baselines (survey, survey_band, survey_value) and population figures per age range,
for the participation reports."""

from tortoise import migrations
from tortoise.migrations import operations as ops
import functools
from json import dumps, loads
from tortoise.fields.base import OnDelete
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('divide_support', '0004_calendar_tokens')]

    initial = False

    operations = [
        ops.CreateModel(
            name='PopulationFigure',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('municipality', fields.ForeignKeyField('divide_support.Municipality', source_field='municipality_id', db_index=True, db_constraint=True, to_field='id', related_name='population_figures', on_delete=OnDelete.RESTRICT)),
                ('as_of', fields.DateField()),
                ('min_age', fields.IntField()),
                ('max_age', fields.IntField(null=True)),
                ('population', fields.IntField()),
            ],
            options={'table': 'population_figure', 'app': 'divide_support', 'unique_together': (('municipality_id', 'as_of', 'min_age'),), 'pk_attr': 'id', 'table_description': 'Residents of an age range on a date (resident register); weights need by population.'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='Survey',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('municipality', fields.ForeignKeyField('divide_support.Municipality', source_field='municipality_id', db_index=True, db_constraint=True, to_field='id', related_name='surveys', on_delete=OnDelete.RESTRICT)),
                ('key', fields.CharField(description='Stable name, e.g. hiratsuka-2020-internet-use', max_length=100)),
                ('title', fields.CharField(max_length=200)),
                ('year', fields.IntField()),
                ('field_from', fields.DateField(null=True)),
                ('field_to', fields.DateField(null=True)),
                ('source', fields.TextField(null=True, unique=False)),
                ('sample_size', fields.IntField(null=True)),
                ('metric_groups', fields.JSONField(default=list, encoder=functools.partial(dumps, separators=(',', ':')), decoder=loads)),
                ('fingerprint', fields.CharField(max_length=64)),
                ('created_at', fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={'table': 'survey', 'app': 'divide_support', 'unique_together': (('municipality_id', 'key'),), 'pk_attr': 'id', 'table_description': "A municipality's own survey: the baseline reports compare participation against."},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='SurveyBand',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('survey', fields.ForeignKeyField('divide_support.Survey', source_field='survey_id', db_index=True, db_constraint=True, to_field='id', related_name='bands', on_delete=OnDelete.CASCADE)),
                ('position', fields.IntField()),
                ('label', fields.CharField(max_length=50)),
                ('min_age', fields.IntField()),
                ('max_age', fields.IntField(null=True, description='null: open-ended (e.g. 80歳以上)')),
                ('respondents', fields.IntField(null=True)),
            ],
            options={'table': 'survey_band', 'app': 'divide_support', 'unique_together': (('survey_id', 'position'),), 'pk_attr': 'id'},
            bases=['Model'],
        ),
        ops.CreateModel(
            name='SurveyValue',
            fields=[
                ('id', fields.IntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ('band', fields.ForeignKeyField('divide_support.SurveyBand', source_field='band_id', db_index=True, db_constraint=True, to_field='id', related_name='values', on_delete=OnDelete.CASCADE)),
                ('metric', fields.CharField(max_length=100)),
                ('percent', fields.FloatField()),
            ],
            options={'table': 'survey_value', 'app': 'divide_support', 'unique_together': (('band_id', 'metric'),), 'pk_attr': 'id', 'table_description': 'One percentage of one band, e.g. internet_use.using = 50.4 for 70～79歳.'},
            bases=['Model'],
        ),
    ]
