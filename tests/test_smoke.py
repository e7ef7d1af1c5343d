import factories
from factories import at

from divide_support.scheduling import service as scheduling
from divide_support.scheduling.models import RegistrationStatus


async def test_register_confirms_a_seat(town):
    session = await factories.session(town.coordinator, at(days=3, hour=10), capacity=2)
    resident = await factories.resident(town.coordinator)
    registration = await scheduling.register(actor=town.coordinator, session_id=session.id,
                                             resident_id=resident.id)
    assert registration.status == RegistrationStatus.CONFIRMED
