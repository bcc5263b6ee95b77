-- Source data for the seed examples run locally against PostgreSQL.
--   psql "$DATAWORKS_CONN_CAMPAIGNS_DB" -f examples/local/seed.sql
DROP TABLE IF EXISTS campaigns, users, orders, order_items, customers, daily_aggregates CASCADE;

CREATE TABLE users (id int PRIMARY KEY, segment text NOT NULL, ltv numeric(10, 2) NOT NULL);
INSERT INTO users
SELECT i, (ARRAY['enterprise', 'smb', 'consumer'])[1 + i % 3], round((i * 37 % 5000)::numeric, 2)
FROM generate_series(1, 500) i;

CREATE TABLE campaigns (id int PRIMARY KEY, user_id int REFERENCES users, quarter text, year int,
                        channel text, spend numeric(10, 2), conversions int);
INSERT INTO campaigns
SELECT i, 1 + i % 500, 'Q' || (1 + i % 4), CASE WHEN i % 3 = 0 THEN 2023 ELSE 2024 END,
       (ARRAY['email', 'search', 'social'])[1 + i % 3],
       round((i * 13 % 1000)::numeric, 2), i % 17
FROM generate_series(1, 4000) i;

CREATE TABLE customers (id int PRIMARY KEY, name text, country text, partition_date date);
INSERT INTO customers
SELECT i, 'customer-' || i, (ARRAY['DE', 'FR', 'US', 'JP'])[1 + i % 4], DATE '2024-01-15'
FROM generate_series(1, 300) i;

CREATE TABLE orders (id int PRIMARY KEY, customer_id int, total_amount numeric(10, 2), partition_date date);
INSERT INTO orders
SELECT i, 1 + i % 300, CASE WHEN i % 50 = 0 THEN -10 ELSE round((i * 7 % 900)::numeric, 2) END,
       DATE '2024-01-14' + i % 2
FROM generate_series(1, 6000) i;

CREATE TABLE order_items (order_id int, sku text, quantity int, partition_date date);
INSERT INTO order_items
SELECT 1 + i % 6000, 'sku-' || (i % 40), 1 + i % 3, DATE '2024-01-14' + (1 + i % 6000) % 2
FROM generate_series(1, 15000) i;
