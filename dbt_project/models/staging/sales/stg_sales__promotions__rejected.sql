{{ rejected_rows('sales', 'promotions', 'stg_sales__promotions__validated') }}
