from app.db.session import Database, open_database
from app.db.tables import AnswerRecord, Base, PlayerRecord, RoundRecord

__all__ = ["AnswerRecord", "Base", "Database", "PlayerRecord", "RoundRecord", "open_database"]
