-- One row per order, with its customer, item count and the customer's events of the day.
SELECT o.id AS order_id, o.customer_id, c.country, o.total_amount, o.partition_date,
       coalesce(i.items, 0) AS items, coalesce(e.events, 0) AS events
FROM raw_orders o
JOIN raw_customers c ON c.id = o.customer_id
LEFT JOIN (SELECT order_id, sum(quantity) AS items FROM raw_order_items GROUP BY 1) i ON i.order_id = o.id
LEFT JOIN (SELECT user_id, count(*) AS events FROM raw_events GROUP BY 1) e ON e.user_id = o.customer_id
