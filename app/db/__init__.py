from app.db.paint_tables import PaintingRecord, PaintStrokeRecord, SmallestAttackRecord
from app.db.session import Database, open_database
from app.db.tables import AnswerRecord, Base, PlayerRecord, RoundRecord

__all__ = [
    "AnswerRecord",
    "Base",
    "Database",
    "PaintStrokeRecord",
    "PaintingRecord",
    "PlayerRecord",
    "RoundRecord",
    "SmallestAttackRecord",
    "open_database",
]
