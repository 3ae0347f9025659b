"""Objections lodged against formal candidates during the public notice, and the committee's ruling."""
