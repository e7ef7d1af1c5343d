"""What a resident asks the supporters to know or help with (Resident.support_needs): shown to
the supporters of their sessions, unlike staff notes; erased with the rest of their data."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from tortoise import fields

class Migration(migrations.Migration):
    dependencies = [('divide_support', '0010_resident_search_keys')]

    initial = False

    operations = [
        ops.AddField(
            model_name='Resident',
            name='support_needs',
            field=fields.TextField(null=True, unique=False),
        ),
    ]
