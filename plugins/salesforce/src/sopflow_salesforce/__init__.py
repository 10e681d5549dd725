"""Salesforce for sopflow: two-way field sync with a CRM the business already has."""
