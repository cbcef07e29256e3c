{{ rejected_rows('sales', 'prices', 'stg_sales__prices__validated') }}
