"""The paper the office works with: forms, public notices and decisions as Word (.docx) and PDF.

This room renders what the rooms below it hold; it decides nothing and stores nothing of its own.
"""
