"""The service over HTTP: applicant portal, committee dashboard, public pages, REST API, exports."""
