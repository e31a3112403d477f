"""Fool the machine yourself (issue #18, as Dynabench does for text): a player edits a definition the text opponent
classifies correctly until its answer changes, within a budget of words and above a sentence-similarity floor;
other players then read the edited text as a short round, which checks that people still see the original category.

``rules`` holds the edit rules (plain Python), ``texts`` the definitions offered, ``edits`` the editor's rounds
(start, live check, submit), ``validation`` the rounds in which others read a human-written text."""
