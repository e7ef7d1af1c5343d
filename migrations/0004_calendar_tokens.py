"""Calendar tokens: unguessable IDs in invite and feed URLs, one per seat, per duty and per
supporter. Existing rows get one from the database (gen_random_uuid: 122 random bits)."""

from tortoise import migrations
from tortoise.migrations import operations as ops
from divide_support.core.tokens import new_calendar_token
from tortoise import fields

class AddTokenField(ops.AddField):
    """AddField whose column the database fills for existing rows (and for rows written by
    plain SQL, e.g. scripts), then unique."""

    def __init__(self, model_name: str, name: str, field: object, table: str) -> None:
        super().__init__(model_name=model_name, name=name, field=field)
        self.table = table

    async def database_forward(self, app_label, old_state, new_state, state_editor=None) -> None:
        if state_editor:
            await state_editor.client.execute_script(
                f"ALTER TABLE {self.table} ADD COLUMN {self.name} VARCHAR(32) NOT NULL "
                f"DEFAULT replace(gen_random_uuid()::text, '-', '');"
                f"ALTER TABLE {self.table} ADD CONSTRAINT {self.table}_{self.name}_key "
                f"UNIQUE ({self.name});")


class Migration(migrations.Migration):
    dependencies = [('divide_support', '0003_messaging')]

    initial = False

    operations = [
        AddTokenField(
            model_name='Assignment',
            name='calendar_token',
            field=fields.CharField(default=new_calendar_token, unique=True, max_length=32),
            table='assignment',
        ),
        AddTokenField(
            model_name='Registration',
            name='calendar_token',
            field=fields.CharField(default=new_calendar_token, unique=True, max_length=32),
            table='registration',
        ),
        AddTokenField(
            model_name='Supporter',
            name='calendar_token',
            field=fields.CharField(default=new_calendar_token, unique=True, max_length=32),
            table='supporter',
        ),
    ]
