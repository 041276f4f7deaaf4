-- The report's month-to-date card: one row from analytics.month_to_date.
select * from analytics.month_to_date
